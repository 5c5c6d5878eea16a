//! Rebuilds the crate when a sandbox migration is added, because `sqlx::migrate!` embeds the
//! folder's contents at compile time and cargo does not otherwise watch it.
fn main() {
    println!("cargo:rerun-if-changed=sandbox_migrations");
}
