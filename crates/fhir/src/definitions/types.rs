//! The in-memory type table: every resource, datatype, primitive and backbone element of R4, with its
//! elements, and one flattened lookup table per type from JSON key to element.

use crate::fast_hash::FastMap;

/// Index of a type in the [`TypeTable`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct TypeId(pub(crate) u16);

/// The R4 primitive types, each with its own JSON representation and lexical rules.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Primitive {
    Boolean,
    Integer,
    PositiveInt,
    UnsignedInt,
    Decimal,
    String,
    Markdown,
    Id,
    Code,
    Uri,
    Url,
    Canonical,
    Oid,
    Uuid,
    Date,
    DateTime,
    Instant,
    Time,
    Base64Binary,
    Xhtml,
}

impl Primitive {
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "boolean" => Self::Boolean,
            "integer" => Self::Integer,
            "positiveInt" => Self::PositiveInt,
            "unsignedInt" => Self::UnsignedInt,
            "decimal" => Self::Decimal,
            "string" => Self::String,
            "markdown" => Self::Markdown,
            "id" => Self::Id,
            "code" => Self::Code,
            "uri" => Self::Uri,
            "url" => Self::Url,
            "canonical" => Self::Canonical,
            "oid" => Self::Oid,
            "uuid" => Self::Uuid,
            "date" => Self::Date,
            "dateTime" => Self::DateTime,
            "instant" => Self::Instant,
            "time" => Self::Time,
            "base64Binary" => Self::Base64Binary,
            "xhtml" => Self::Xhtml,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum TypeKind {
    Primitive(Primitive),
    /// Complex datatypes, including the abstract `Element` and `BackboneElement`.
    Complex,
    /// Resources, including the abstract `Resource` and `DomainResource`.
    Resource,
    /// An inline backbone element, named by its path (`Patient.contact`).
    Backbone,
    /// A FHIRPath system type (`System.String`), the type of a primitive's `value`.
    System,
}

/// One element of a type, as defined in that type's snapshot.
#[derive(Debug)]
pub(crate) struct ElementDef {
    /// Name without the `[x]` of a choice element.
    pub(crate) name: &'static str,
    pub(crate) min: u32,
    /// `max = "*"` (the JSON value is an array).
    pub(crate) many: bool,
    pub(crate) is_choice: bool,
    /// Type names; for a choice element one per allowed type, for a contentReference the referenced
    /// backbone path.
    pub(crate) types: &'static [&'static str],
    pub(crate) type_ids: Box<[TypeId]>,
    /// JSON key of each type variant (`valueQuantity`, …), aligned with `types`; `[name]` when not a choice.
    pub(crate) json_keys: &'static [&'static str],
    /// The `_`-prefixed sibling key of each variant (`_valueString`), aligned with `json_keys`.
    pub(crate) underscore_keys: &'static [&'static str],
    /// `isSummary` in the R4 definition: part of the `_summary=true` view.
    pub(crate) summary: bool,
}

/// Which variant of an element a JSON key denotes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Variant {
    /// A plain (non-choice) element.
    Plain,
    /// One typed variant of a choice element (`valueQuantity`): index into `types`.
    Choice(u8),
    /// The bare name of a choice element (`value`): valid in FHIRPath, not as a JSON key.
    ChoiceBase,
}

/// Where an element is defined: the type that owns it (maybe a base type) and its index there.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct ElementRef {
    pub(crate) owner: TypeId,
    pub(crate) index: u16,
    pub(crate) variant: Variant,
}

#[derive(Debug)]
pub(crate) struct TypeDef {
    pub(crate) name: &'static str,
    pub(crate) kind: TypeKind,
    pub(crate) base: Option<TypeId>,
    pub(crate) is_abstract: bool,
    /// The type's own elements (inherited ones live on the base types).
    pub(crate) elements: Vec<ElementDef>,
    /// Every JSON key and FHIRPath name valid on this type, including inherited elements: one
    /// hash lookup per key in the validator and the FHIRPath model.
    pub(crate) keys: FastMap<&'static str, ElementRef>,
    /// Elements with `min >= 1`, including inherited ones.
    pub(crate) required: Vec<ElementRef>,
}
