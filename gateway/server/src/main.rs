//! `quiver`: run the gateway, mint tokens, and talk to a gateway from the
//! command line.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
