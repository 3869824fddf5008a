// Writes the manifest (Cargo.toml's name and version, tradebox.toml's permissions and settings)
// that `embed_manifest!()` puts into the component, for an operator to inspect and grant.
fn main() {
    tradebox_manifest::build::embed();
}
