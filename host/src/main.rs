fn main() { println!("cachehost"); }
