use layercake::{Moka, compose::Compose};

fn main() {
    let _tiers: Compose<Moka, String> = Compose::new(Moka::default(), String::new());
}
