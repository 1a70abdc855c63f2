//! `lzw enc|dec`: stdin to stdout through weezl's LZW (LSB, 8-bit literals: Go's
//! `compress/lzw` as etcd-backup-restore uses it).
use std::io::{stdin, stdout, Write};
use weezl::{decode::Decoder, encode::Encoder, BitOrder};

fn main() {
    let (input, out) = (stdin().lock(), stdout().lock());
    let mode = std::env::args().nth(1).unwrap_or_default();
    let result = match mode.as_str() {
        "enc" => {
            Encoder::new(BitOrder::Lsb, 8)
                .into_stream(out)
                .encode_all(input)
                .status
        }
        "dec" => {
            Decoder::new(BitOrder::Lsb, 8)
                .into_stream(out)
                .decode_all(input)
                .status
        }
        _ => {
            eprintln!("usage: lzw enc|dec <IN >OUT");
            std::process::exit(2);
        }
    };
    if let Err(e) = result.and_then(|()| stdout().flush()) {
        eprintln!("lzw {mode}: {e}");
        std::process::exit(1);
    }
}
