fn main() -> std::process::ExitCode {
    etcdguard::cli::main()
}
