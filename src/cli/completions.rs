//! `etcdguard completions <SHELL>` and `etcdguard man`: shell completions and a man page,
//! generated from the same clap definition as the parser, so they never drift.

use clap::CommandFactory;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Shell to generate completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Print the completion script for `args.shell` on stdout.
pub fn run(args: Args) -> u8 {
    let mut cmd = super::Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "etcdguard", &mut std::io::stdout());
    super::EXIT_OK
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {}

/// Print the roff man page (`etcdguard man > etcdguard.1`) on stdout.
pub fn run_man(_args: ManArgs) -> u8 {
    let cmd = super::Cli::command();
    let mut out = Vec::new();
    if let Err(e) = clap_mangen::Man::new(cmd).render(&mut out) {
        eprintln!("etcdguard man: cannot render the man page: {e}");
        return super::EXIT_USAGE;
    }
    use std::io::Write;
    match std::io::stdout().write_all(&out) {
        Ok(()) => super::EXIT_OK,
        Err(e) => {
            eprintln!("etcdguard man: cannot write to stdout: {e}");
            super::EXIT_USAGE
        }
    }
}
