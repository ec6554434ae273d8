//! Rebuilds the binary when the built dashboard changes: `web/dist/` is
//! embedded with `include_dir!`, which Cargo does not watch by itself.

fn main() {
    println!("cargo:rerun-if-changed=web/dist");
}
