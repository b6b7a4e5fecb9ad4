//! [`wire_type!`](crate::wire_type): [`Wire`](super::Wire) for your own structs and enums,
//! written with `macro_rules!` so that the crate needs no proc-macro dependency.

/// Defines a struct or an enum and implements [`Wire`](crate::wire::Wire) for it.
///
/// Write the item inside the macro as you would outside it; the macro emits it unchanged, with an
/// impl that encodes the fields in declaration order. An enum first writes its variant's index in
/// declaration order as a `u32` (reordering variants changes the format; appending does not), and
/// decoding an index it does not have is [`WireError::InvalidTag`](crate::wire::WireError).
///
/// ```
/// use aplex::wire::{Wire, WireError};
///
/// aplex::wire_type! {
///     /// A point on the plane.
///     #[derive(Debug, Clone, PartialEq)]
///     pub struct Point {
///         /// Across.
///         pub x: i32,
///         pub y: i32,
///     }
/// }
///
/// aplex::wire_type! {
///     #[derive(Debug, PartialEq)]
///     pub enum Shape {
///         Circle { r: f64 },
///         Rect(Point, Point),
///         /// Nothing at all.
///         Empty,
///     }
/// }
///
/// aplex::wire_type! {
///     #[derive(Debug, PartialEq)]
///     pub(crate) struct Id(pub u64);
/// }
///
/// aplex::wire_type! {
///     #[derive(Debug, PartialEq)]
///     struct Ping;
/// }
///
/// let rect = Shape::Rect(Point { x: 1, y: 2 }, Point { x: 3, y: 4 });
/// assert_eq!(rect.to_bytes(), [1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0]);
/// assert_eq!(Shape::from_bytes(&rect.to_bytes()), Ok(rect));
/// assert_eq!(Shape::from_bytes(&Shape::Empty.to_bytes()), Ok(Shape::Empty));
/// assert_eq!(Id::from_bytes(&Id(9).to_bytes()), Ok(Id(9)));
/// assert_eq!(Ping.to_bytes(), []);
///
/// let unknown = 3u32.to_bytes(); // Shape has variants 0, 1 and 2
/// assert_eq!(Shape::from_bytes(&unknown), Err(WireError::InvalidTag { type_name: "Shape", tag: 3 }));
/// ```
///
/// # Supported items
///
/// - structs with named fields, tuple structs and unit structs;
/// - enums with unit, tuple and named-field variants, mixed freely;
/// - attributes and doc comments on the item, its fields and its variants; any visibility.
///
/// Not supported, to keep the macro readable: generic parameters and `where` clauses, explicit
/// discriminants, enums without variants, `#[cfg]` on fields or variants, and more than 16 fields
/// in one tuple struct or tuple variant. Implement [`Wire`](crate::wire::Wire) by hand for
/// those: encode each field in order, decode them in the same order.
///
/// One invocation defines one item. (The rules whose first token is `@` are the macro's own
/// helpers, not part of its interface.)
#[macro_export]
macro_rules! wire_type {
    // A struct with named fields.
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$field_meta:meta])* $field_vis:vis $field:ident : $field_ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $( $(#[$field_meta])* $field_vis $field: $field_ty ),*
        }

        impl $crate::wire::Wire for $name {
            #[allow(unused_variables)] // `out` and `input`, in a struct without fields
            fn encode(&self, out: &mut ::std::vec::Vec<u8>) {
                $( $crate::wire::Wire::encode(&self.$field, out); )*
            }

            #[allow(unused_variables)]
            fn decode(
                input: &mut &[u8],
            ) -> ::core::result::Result<Self, $crate::wire::WireError> {
                ::core::result::Result::Ok(Self {
                    $( $field: <$field_ty as $crate::wire::Wire>::decode(input)?, )*
                })
            }
        }
    };

    // A tuple struct.
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident (
            $( $(#[$field_meta:meta])* $field_vis:vis $field_ty:ty ),* $(,)?
        );
    ) => {
        $(#[$meta])*
        $vis struct $name (
            $( $(#[$field_meta])* $field_vis $field_ty ),*
        );

        impl $crate::wire::Wire for $name {
            // The `if let` of `@encode_tuple` cannot fail here; `out` is unused without fields.
            #[allow(irrefutable_let_patterns, unused_variables)]
            fn encode(&self, out: &mut ::std::vec::Vec<u8>) {
                $crate::wire_type!(@encode_tuple self out [Self] $($field_ty),*);
            }

            #[allow(unused_variables)]
            fn decode(
                input: &mut &[u8],
            ) -> ::core::result::Result<Self, $crate::wire::WireError> {
                ::core::result::Result::Ok(Self(
                    $( <$field_ty as $crate::wire::Wire>::decode(input)?, )*
                ))
            }
        }
    };

    // A unit struct: no bytes at all.
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident;
    ) => {
        $(#[$meta])*
        $vis struct $name;

        impl $crate::wire::Wire for $name {
            fn encode(&self, _out: &mut ::std::vec::Vec<u8>) {}

            fn decode(
                _input: &mut &[u8],
            ) -> ::core::result::Result<Self, $crate::wire::WireError> {
                ::core::result::Result::Ok(Self)
            }
        }
    };

    // An enum: each variant is a name, optionally followed by `( … )` or `{ … }`.
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$variant_meta:meta])*
                $variant:ident $( ( $($tuple:tt)* ) )? $( { $($named:tt)* } )?
            ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $(
                $(#[$variant_meta])*
                $variant $( ( $($tuple)* ) )? $( { $($named)* } )?
            ),+
        }

        const _: () = {
            // A field-less twin of the enum: `__WireTag::V as u32` is the index of variant `V`.
            #[allow(dead_code, non_camel_case_types)]
            enum __WireTag { $($variant),+ }

            impl $crate::wire::Wire for $name {
                // A field pattern cannot fail in an enum of one variant.
                #[allow(irrefutable_let_patterns)]
                fn encode(&self, out: &mut ::std::vec::Vec<u8>) {
                    match self {
                        $(
                            Self::$variant { .. } => {
                                $crate::wire::Wire::encode(&(__WireTag::$variant as u32), out);
                                $crate::wire_type!(
                                    @encode_variant self out
                                    $variant $( ( $($tuple)* ) )? $( { $($named)* } )?
                                );
                            }
                        )+
                    }
                }

                fn decode(
                    input: &mut &[u8],
                ) -> ::core::result::Result<Self, $crate::wire::WireError> {
                    let tag = <u32 as $crate::wire::Wire>::decode(input)?;
                    $(
                        if tag == __WireTag::$variant as u32 {
                            return ::core::result::Result::Ok($crate::wire_type!(
                                @decode_variant input
                                $variant $( ( $($tuple)* ) )? $( { $($named)* } )?
                            ));
                        }
                    )+
                    ::core::result::Result::Err($crate::wire::WireError::InvalidTag {
                        type_name: ::core::stringify!($name),
                        tag,
                    })
                }
            }
        };
    };

    // ---- Helpers --------------------------------------------------------------------------

    // Encodes the fields of the variant `self` is known to be.
    (@encode_variant $this:ident $out:ident $variant:ident) => {};
    (@encode_variant $this:ident $out:ident $variant:ident (
        $( $(#[$field_meta:meta])* $field_ty:ty ),* $(,)?
    )) => {
        $crate::wire_type!(@encode_tuple $this $out [Self::$variant] $($field_ty),*)
    };
    (@encode_variant $this:ident $out:ident $variant:ident {
        $( $(#[$field_meta:meta])* $field:ident : $field_ty:ty ),* $(,)?
    }) => {
        if let Self::$variant { $($field),* } = $this {
            $( $crate::wire::Wire::encode($field, $out); )*
        }
    };

    // Encodes the fields of a tuple struct or tuple variant (its path in brackets). They have no
    // names, so each field type is paired with one of a fixed list of binding names.
    (@encode_tuple $this:ident $out:ident [$($path:tt)+] $($field_ty:ty),*) => {
        $crate::wire_type!(
            @encode_tuple_bind $this $out [$($path)+] []
            [_0 _1 _2 _3 _4 _5 _6 _7 _8 _9 _10 _11 _12 _13 _14 _15]
            $($field_ty),*
        )
    };
    (@encode_tuple_bind $this:ident $out:ident [$($path:tt)+] [$($bound:ident)*]
        [$next:ident $($unused:ident)*] $field_ty:ty $(, $rest:ty)*
    ) => {
        $crate::wire_type!(
            @encode_tuple_bind $this $out [$($path)+] [$($bound)* $next] [$($unused)*] $($rest),*
        )
    };
    (@encode_tuple_bind $this:ident $out:ident [$($path:tt)+] [$($bound:ident)*]
        [$($unused:ident)*]
    ) => {
        if let $($path)+ ( $($bound),* ) = $this {
            $( $crate::wire::Wire::encode($bound, $out); )*
        }
    };

    // Decodes the fields of a variant whose tag has been read.
    (@decode_variant $input:ident $variant:ident) => {
        Self::$variant
    };
    (@decode_variant $input:ident $variant:ident (
        $( $(#[$field_meta:meta])* $field_ty:ty ),* $(,)?
    )) => {
        Self::$variant( $( <$field_ty as $crate::wire::Wire>::decode($input)?, )* )
    };
    (@decode_variant $input:ident $variant:ident {
        $( $(#[$field_meta:meta])* $field:ident : $field_ty:ty ),* $(,)?
    }) => {
        Self::$variant { $( $field: <$field_ty as $crate::wire::Wire>::decode($input)?, )* }
    };
}
