//! Builds the XDP programs of `xvs-ebpf` for the BPF target (nightly, `-Z build-std=core`,
//! linked by bpf-linker) and leaves the objects in OUT_DIR, where `src/objects.rs` embeds them.
//! `cargo xtask setup` installs what this needs.

fn main() {
    let ebpf_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../xvs-ebpf");
    let built = aya_build::build_ebpf(
        [aya_build::Package {
            name: "xvs-ebpf",
            root_dir: ebpf_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    );
    if let Err(err) = built {
        eprintln!("building the XDP programs failed: {err:#}");
        eprintln!("run `cargo xtask setup` once: it installs the nightly rust-src and bpf-linker");
        std::process::exit(1);
    }
}
