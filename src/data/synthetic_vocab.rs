//! The fixed word lists of the synthetic regulated-domain corpus.
//!
//! Kept apart from the generator so the vocabulary can be read (and audited) at a glance. The
//! lists are disjoint, every entry is exactly one [`split_words`](super::tokenizer::split_words)
//! token, and amounts always carry two decimals so no amount can coincide with an integer dose.
//! About 240 words in all, small enough for a tiny model to learn in minutes.

/// Category names, in block order. Token categories index into this list.
pub const CATEGORIES: [&str; 10] = [
    "drug",
    "dose",
    "unit",
    "condition",
    "amount",
    "currency",
    "account",
    "date",
    "function",
    "rail",
];

/// Index of each category in [`CATEGORIES`].
pub(crate) mod cat {
    pub const DRUG: usize = 0;
    pub const DOSE: usize = 1;
    pub const UNIT: usize = 2;
    pub const CONDITION: usize = 3;
    pub const AMOUNT: usize = 4;
    pub const CURRENCY: usize = 5;
    pub const ACCOUNT: usize = 6;
    pub const DATE: usize = 7;
    pub const FUNCTION: usize = 8;
    pub const RAIL: usize = 9;
}

/// Generic drug names.
pub const DRUGS: [&str; 25] = [
    "atenolol",
    "lisinopril",
    "metformin",
    "amlodipine",
    "simvastatin",
    "atorvastatin",
    "omeprazole",
    "levothyroxine",
    "metoprolol",
    "losartan",
    "warfarin",
    "insulin",
    "amoxicillin",
    "ibuprofen",
    "paracetamol",
    "prednisone",
    "sertraline",
    "fluoxetine",
    "gabapentin",
    "furosemide",
    "hydrochlorothiazide",
    "albuterol",
    "clopidogrel",
    "citalopram",
    "tramadol",
];

/// Integer doses.
pub const DOSES: [&str; 11] = [
    "5", "10", "20", "25", "40", "50", "100", "200", "250", "500", "1000",
];

/// Dose units.
pub const UNITS: [&str; 5] = ["mg", "mcg", "ml", "units", "g"];

/// Single-word conditions.
pub const CONDITIONS: [&str; 25] = [
    "hypertension",
    "diabetes",
    "asthma",
    "migraine",
    "arthritis",
    "pneumonia",
    "bronchitis",
    "depression",
    "anxiety",
    "epilepsy",
    "hypothyroidism",
    "angina",
    "gout",
    "psoriasis",
    "eczema",
    "sinusitis",
    "insomnia",
    "anemia",
    "obesity",
    "osteoporosis",
    "gastritis",
    "tonsillitis",
    "cellulitis",
    "dermatitis",
    "neuropathy",
];

/// Amounts, always with two decimals.
pub const AMOUNTS: [&str; 40] = [
    "12.50",
    "19.99",
    "25.00",
    "49.99",
    "75.25",
    "99.00",
    "120.00",
    "149.95",
    "250.00",
    "300.10",
    "415.75",
    "500.00",
    "640.40",
    "799.99",
    "875.00",
    "990.01",
    "1,000.00",
    "1,250.50",
    "1,499.00",
    "1,780.25",
    "2,000.00",
    "2,345.67",
    "3,100.00",
    "3,999.99",
    "4,250.00",
    "5,000.00",
    "6,125.80",
    "7,450.00",
    "8,800.88",
    "9,999.00",
    "10,000.00",
    "12,500.00",
    "15,750.25",
    "20,000.00",
    "25,300.40",
    "33,333.33",
    "48,000.00",
    "60,500.75",
    "75,000.00",
    "99,999.99",
];

/// ISO currency codes.
pub const CURRENCIES: [&str; 6] = ["USD", "EUR", "GBP", "CHF", "JPY", "CAD"];

/// The payment rail of each currency in [`CURRENCIES`] (same order): the token written right
/// after an amount. It is what makes the currency worth pointing at: predicting the rail from
/// the amount's position needs the currency.
pub const RAILS: [&str; 6] = ["ACH", "SEPA", "BACS", "SIC", "Zengin", "ACSS"];

/// Account codes.
pub const ACCOUNTS: [&str; 30] = [
    "ACC-4821", "ACC-1093", "ACC-7750", "ACC-3318", "ACC-6602", "ACC-2147", "ACC-9054", "ACC-5589",
    "ACC-1276", "ACC-8431", "ACC-3960", "ACC-7015", "ACC-4478", "ACC-2833", "ACC-6199", "ACC-9712",
    "ACC-1564", "ACC-8027", "ACC-3645", "ACC-5201", "ACC-7386", "ACC-2590", "ACC-6943", "ACC-4107",
    "ACC-8868", "ACC-1731", "ACC-5472", "ACC-9325", "ACC-3089", "ACC-6657",
];

/// ISO dates.
pub const DATES: [&str; 40] = [
    "2024-01-03",
    "2024-01-17",
    "2024-01-29",
    "2024-02-05",
    "2024-02-14",
    "2024-02-26",
    "2024-03-05",
    "2024-03-12",
    "2024-03-28",
    "2024-04-02",
    "2024-04-16",
    "2024-04-30",
    "2024-05-07",
    "2024-05-21",
    "2024-06-04",
    "2024-06-18",
    "2024-07-01",
    "2024-07-15",
    "2024-07-29",
    "2024-08-12",
    "2024-08-26",
    "2024-09-09",
    "2024-09-23",
    "2024-10-07",
    "2024-10-21",
    "2024-11-04",
    "2024-11-18",
    "2024-12-02",
    "2024-12-16",
    "2024-12-30",
    "2025-01-13",
    "2025-01-27",
    "2025-02-10",
    "2025-02-24",
    "2025-03-10",
    "2025-03-24",
    "2025-04-07",
    "2025-04-21",
    "2025-05-05",
    "2025-05-19",
];

/// Dose frequencies (function words).
pub const FREQUENCIES: [&str; 5] = ["daily", "twice", "weekly", "nightly", "hourly"];

/// Words between a drug and its dose (1–5 words each).
pub const DRUG_DOSE_GAPS: [&[&str]; 7] = [
    &["at"],
    &["dose"],
    &["increased", "to"],
    &["reduced", "to"],
    &["titrated", "up", "to"],
    &["at", "a", "dose", "of"],
    &["given", "at", "a", "dose", "of"],
];

/// Words between a currency and its amount (1–5 words each).
pub const CURRENCY_AMOUNT_GAPS: [&[&str]; 7] = [
    &["of"],
    &["amount"],
    &["total", "of"],
    &["sum", "of"],
    &["for", "a", "total", "of"],
    &["net", "amount", "of"],
    &["for", "the", "full", "amount", "of"],
];
