use dataflow::{pipeline, Sink, Source};

#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Point {
    x: f64,
}

fn point(x: f64) -> Point {
    Point { x }
}

#[pipeline]
fn by_point(input: Source<f64>, out: Sink<f64>) {
    input.key_by(|x: &f64| point(*x)).map(|pair: (Point, f64)| pair.1).to(out);
}

fn main() {}
