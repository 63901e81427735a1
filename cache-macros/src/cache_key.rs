//! `#[derive(CacheKey)]`: a type keys cache entries by its fields, in order (an enum by its
//! variant's name, then its fields). Expands to `::layercake::CacheKey`.

use proc_macro2::TokenStream as Tokens;
use quote::{format_ident, quote};
use syn::{Data, DeriveInput, Fields, Index};

/// Writes each of `accesses` (expressions of references to the fields) into `key`.
fn write(accesses: impl IntoIterator<Item = Tokens>) -> Tokens {
    let writes = accesses
        .into_iter()
        .map(|access| quote!(::layercake::CacheKey::write_key(#access, key);));
    quote!(#(#writes)*)
}

/// The bindings of a variant's fields, and the pattern that binds them.
fn bind(fields: &Fields) -> (Vec<Tokens>, Tokens) {
    let names: Vec<_> = (0..fields.len())
        .map(|i| format_ident!("field_{i}"))
        .collect();
    let pattern = match fields {
        Fields::Named(named) => {
            let idents = named.named.iter().map(|f| f.ident.as_ref());
            quote!({ #(#idents: #names),* })
        }
        Fields::Unnamed(_) => quote!(( #(#names),* )),
        Fields::Unit => quote!(),
    };
    (names.iter().map(|n| quote!(#n)).collect(), pattern)
}

pub(crate) fn expand(input: DeriveInput) -> syn::Result<Tokens> {
    let name = &input.ident;
    let generics = crate::bounded(&input.generics, syn::parse_quote!(::layercake::CacheKey));
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let body = match &input.data {
        Data::Struct(data) => {
            write(
                data.fields
                    .iter()
                    .enumerate()
                    .map(|(i, field)| match &field.ident {
                        Some(ident) => quote!(&self.#ident),
                        None => {
                            let index = Index::from(i);
                            quote!(&self.#index)
                        }
                    }),
            )
        }
        Data::Enum(data) => {
            let arms = data.variants.iter().map(|variant| {
                let ident = &variant.ident;
                let tag = ident.to_string();
                let (bindings, pattern) = bind(&variant.fields);
                let fields = write(bindings);
                quote!(Self::#ident #pattern => {
                    ::layercake::CacheKey::write_key(#tag, key);
                    #fields
                })
            });
            quote!(match self { #(#arms)* })
        }
        Data::Union(union) => {
            return Err(syn::Error::new(
                union.union_token.span,
                "`CacheKey` cannot be derived for a union: implement it by hand",
            ));
        }
    };
    Ok(quote! {
        impl #impl_generics ::layercake::CacheKey for #name #ty_generics #where_clause {
            fn write_key(&self, key: &mut ::layercake::KeyBuilder) {
                #body
            }
        }
    })
}
