use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    edge::cli::main(edge::cli::Cli::parse()).await
}
