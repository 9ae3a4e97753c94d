use dataflow::stage;

/// Doubles.
#[stage]
fn double(x: u32) -> u32 {
    x * 2
}

#[stage(name = "triple_it")]
pub fn triple(x: u32) -> u32 {
    x * 3
}

fn main() {
    assert_eq!(double(2), 4);
    assert_eq!(triple(2), 6);
    assert_eq!(triple.name(), "triple_it");
}
