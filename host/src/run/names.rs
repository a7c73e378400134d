//! Adjective-animal names for flow runs, as Prefect gives them (`crimson-otter`).

const ADJECTIVES: &[&str] = &[
    "amber", "ancient", "brave", "bright", "calm", "clever", "crimson", "curious", "daring", "dazzling", "eager",
    "elegant", "fearless", "fluffy", "gentle", "glorious", "golden", "graceful", "happy", "hidden", "humble", "icy",
    "jolly", "keen", "lively", "lucky", "mellow", "misty", "nimble", "noble", "olive", "patient", "proud", "quick",
    "quiet", "rapid", "rustic", "scarlet", "silent", "silver", "smart", "spry", "steady", "sturdy", "swift", "tidy",
    "vivid", "warm", "wise", "zealous",
];

const ANIMALS: &[&str] = &[
    "albatross",
    "alpaca",
    "badger",
    "beaver",
    "bison",
    "capybara",
    "cheetah",
    "coyote",
    "crane",
    "dingo",
    "dolphin",
    "eagle",
    "falcon",
    "ferret",
    "gazelle",
    "gecko",
    "heron",
    "hedgehog",
    "ibex",
    "jackal",
    "jaguar",
    "kestrel",
    "koala",
    "lemur",
    "lynx",
    "magpie",
    "marmot",
    "meerkat",
    "narwhal",
    "newt",
    "ocelot",
    "osprey",
    "otter",
    "panda",
    "pelican",
    "puffin",
    "quokka",
    "raccoon",
    "raven",
    "salamander",
    "seal",
    "sparrow",
    "tapir",
    "toucan",
    "turtle",
    "urchin",
    "vulture",
    "walrus",
    "wombat",
    "yak",
];

/// A name picked from the first bytes of a run's id, so one id always gives one name.
pub fn run_name(id: &uuid::Uuid) -> String {
    let bytes = id.as_bytes();
    let adjective = ADJECTIVES[usize::from(bytes[0]) % ADJECTIVES.len()];
    let animal = ANIMALS[usize::from(bytes[1]) % ANIMALS.len()];
    format!("{adjective}-{animal}")
}
