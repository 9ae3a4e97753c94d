use dataflow::stage;

#[stage(name = "identity")]
fn identity<T>(x: T) -> T {
    x
}

fn main() {}
