use layercake::{Moka, compose::{Compose, Parallel, Sequential}};

fn main() {
    let _tiers: Compose<Moka, Moka, Sequential, Sequential, Parallel> =
        Compose::new(Moka::default(), Moka::default());
}
