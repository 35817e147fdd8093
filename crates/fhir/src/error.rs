//! Errors of loading the embedded definitions. They can only occur when the committed data is
//! broken (it is not input), which a unit test catches.

#[derive(Debug, thiserror::Error)]
pub enum DefinitionsError {
    #[error("{file}: malformed JSON: {source}")]
    Json {
        file: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("type {0} is defined twice")]
    DuplicateType(&'static str),
    #[error("type {owner} refers to unknown type {name}")]
    UnknownType {
        owner: &'static str,
        name: &'static str,
    },
    #[error("type {owner}: element {element}: {message}")]
    BadElement {
        owner: &'static str,
        element: &'static str,
        message: &'static str,
    },
    #[error("type {0} is missing from the definitions")]
    MissingType(&'static str),
    #[error("search parameter {url}: {message}")]
    BadSearchParam { url: &'static str, message: String },
}
