//! Places in Baden-Württemberg and Bavaria (the pilot regions), streets and synthetic hospitals.

#[derive(Debug)]
pub struct City {
    pub name: &'static str,
    /// Inclusive postal-code range of the city's delivery areas.
    pub postal: (u32, u32),
    /// ISO 3166-2 code of the federal state.
    pub state: &'static str,
}

const fn c(name: &'static str, lo: u32, hi: u32, state: &'static str) -> City {
    City {
        name,
        postal: (lo, hi),
        state,
    }
}

pub static CITIES: &[City] = &[
    c("Stuttgart", 70173, 70619, "DE-BW"),
    c("Karlsruhe", 76131, 76229, "DE-BW"),
    c("Mannheim", 68159, 68309, "DE-BW"),
    c("Freiburg im Breisgau", 79098, 79117, "DE-BW"),
    c("Heidelberg", 69115, 69126, "DE-BW"),
    c("Ulm", 89073, 89081, "DE-BW"),
    c("Tübingen", 72070, 72076, "DE-BW"),
    c("Heilbronn", 74072, 74081, "DE-BW"),
    c("Pforzheim", 75172, 75181, "DE-BW"),
    c("Reutlingen", 72760, 72770, "DE-BW"),
    c("Esslingen am Neckar", 73728, 73734, "DE-BW"),
    c("Ludwigsburg", 71634, 71642, "DE-BW"),
    c("Konstanz", 78462, 78467, "DE-BW"),
    c("Offenburg", 77652, 77656, "DE-BW"),
    c("Ravensburg", 88212, 88214, "DE-BW"),
    c("Schwäbisch Hall", 74523, 74523, "DE-BW"),
    c("München", 80331, 81929, "DE-BY"),
    c("Nürnberg", 90402, 90491, "DE-BY"),
    c("Augsburg", 86150, 86199, "DE-BY"),
    c("Regensburg", 93047, 93059, "DE-BY"),
    c("Würzburg", 97070, 97084, "DE-BY"),
    c("Erlangen", 91052, 91058, "DE-BY"),
    c("Ingolstadt", 85049, 85057, "DE-BY"),
    c("Bamberg", 96047, 96052, "DE-BY"),
    c("Passau", 94032, 94036, "DE-BY"),
    c("Rosenheim", 83022, 83026, "DE-BY"),
];

pub static STREETS: &[&str] = &[
    "Hauptstraße",
    "Schulstraße",
    "Gartenstraße",
    "Bahnhofstraße",
    "Dorfstraße",
    "Bergstraße",
    "Birkenweg",
    "Lindenstraße",
    "Kirchstraße",
    "Waldstraße",
    "Ringstraße",
    "Schillerstraße",
    "Goethestraße",
    "Wiesenweg",
    "Mühlweg",
    "Am Sportplatz",
    "Friedhofstraße",
    "Rosenstraße",
    "Amselweg",
    "Uhlandstraße",
    "Mozartstraße",
    "Eichendorffstraße",
    "Neckarstraße",
    "Donaustraße",
    "Keplerstraße",
    "Ludwigstraße",
    "Marktplatz",
    "Talstraße",
    "Feldweg",
    "Blumenstraße",
];

/// Name patterns for synthetic hospitals; `{}` is the city. The first is the university hospital.
pub static HOSPITAL_PATTERNS: &[&str] = &[
    "Universitätsklinikum {}",
    "Klinikum {}",
    "Städtisches Krankenhaus {}",
    "Kreisklinik {}",
    "St. Elisabethen-Krankenhaus {}",
    "Evangelisches Diakonie-Klinikum {}",
    "Marienhospital {}",
    "Kreiskrankenhaus {}",
];
