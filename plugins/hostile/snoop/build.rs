// Writes the manifest (Cargo.toml metadata + tradebox.toml) that `embed_manifest!()` puts in the component.
fn main() {
    tradebox_manifest::build::embed();
}
