//! `cargo run --release -p medicus-bench --example transactions -- [N]`
fn main() {
    let n = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    match medicus_bench::cases::transactions::run(
        &medicus_bench::cases::transactions::TransactionOptions { transactions: n },
    ) {
        Ok(r) => print!("{r}"),
        Err(e) => {
            eprintln!("bench failed: {e}");
            std::process::exit(1);
        }
    }
}
