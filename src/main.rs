fn main() {
    println!("spine {}", env!("CARGO_PKG_VERSION"));
}
