//! The data model shared by every component: values and records
//! ([`value`]; the fast field scanner, [`scan`]), the order-preserving key and row codecs ([`codec`]), and
//! source positions as offset ranges ([`offsets`]).

pub mod codec;
pub mod offsets;
pub mod scan;
pub mod value;
