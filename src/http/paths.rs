//! The ids endpoints take in their paths, as the API document describes them: named
//! once here (an id is a positive integer) instead of in every annotation.

use utoipa::IntoParams;

macro_rules! path_ids {
    ($($name:ident = $description:literal;)*) => {$(
        #[doc = concat!("`{id}`: the ", $description, ".")]
        #[derive(IntoParams)]
        #[into_params(parameter_in = Path)]
        // Only the document reads it: the handlers take their ids through `caller`.
        #[allow(dead_code)]
        pub struct $name {
            #[doc = $description]
            #[param(minimum = 1)]
            id: i64,
        }
    )*};
}

path_ids! {
    CardId = "card id";
    TokenId = "token id";
    CodeId = "code id";
    KeyId = "API key id";
}
