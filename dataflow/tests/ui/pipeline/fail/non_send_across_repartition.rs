use std::rc::Rc;

use dataflow::{pipeline, Sink, Source};

fn wrap(x: u32) -> Rc<u32> {
    Rc::new(x)
}

#[pipeline]
fn shared(input: Source<u32>, out: Sink<(u32, u64)>) {
    input.map(wrap).key_by(|x: &Rc<u32>| **x).count().to(out);
}

fn main() {}
