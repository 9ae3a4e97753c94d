use dataflow::stage;

struct Scaler {
    factor: u32,
}

impl Scaler {
    #[stage]
    fn scale(&self, x: u32) -> u32 {
        x * self.factor
    }
}

fn main() {
    let _ = Scaler { factor: 2 }.scale(1);
}
