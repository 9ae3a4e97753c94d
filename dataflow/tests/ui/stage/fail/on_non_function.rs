use dataflow::stage;

#[stage]
struct NotAStage;

fn main() {}
