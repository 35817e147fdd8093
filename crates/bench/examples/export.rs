//! `cargo run --release -p medicus-bench --example export -- [RESOURCES]`
fn main() {
    let n = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    match medicus_bench::cases::export::run(&medicus_bench::cases::export::ExportOptions {
        resources: n,
    }) {
        Ok(r) => print!("{r}"),
        Err(e) => {
            eprintln!("bench failed: {e}");
            std::process::exit(1);
        }
    }
}
