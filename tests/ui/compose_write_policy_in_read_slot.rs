use layercake::{Moka, compose::{Compose, OptimisticParallel}};

fn main() {
    let _tiers: Compose<Moka, Moka, OptimisticParallel> = Compose::new(Moka::default(), Moka::default());
}
