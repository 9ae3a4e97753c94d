use dataflow::stage;

#[stage(paralell = 4)]
fn double(x: u32) -> u32 {
    x * 2
}

fn main() {
    assert_eq!(double(2), 4);
}
