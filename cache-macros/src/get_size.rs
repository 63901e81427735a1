//! `#[derive(GetSize)]`: the heap a value owns is the sum of its fields', for the byte budget of
//! memory tiers. Expands to `::layercake::GetSize` (get-size2's trait, re-exported), so a user
//! needs no other dependency.

use proc_macro2::TokenStream as Tokens;
use quote::{format_ident, quote};
use syn::{Data, DeriveInput, Fields, Index, spanned::Spanned};

/// Whether a field says `#[get_size(ignore)]`.
fn ignored(field: &syn::Field) -> syn::Result<bool> {
    let mut ignore = false;
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("get_size")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("ignore") {
                ignore = true;
                Ok(())
            } else {
                Err(meta.error("the only `get_size` field attribute is `ignore`"))
            }
        })?;
    }
    Ok(ignore)
}

/// The heap sizes of `fields`, reached through `access` (`&self.name`, or a binding), summed
/// into `total` with the tracker threaded through.
fn sum(fields: &[(Tokens, &syn::Field)]) -> syn::Result<Tokens> {
    let mut adds = Vec::new();
    for (access, field) in fields {
        if ignored(field)? {
            continue;
        }
        adds.push(quote! {
            let (add, next) = ::layercake::GetSize::get_heap_size_with_tracker(#access, tracker);
            total += add;
            tracker = next;
        });
    }
    Ok(quote!(#(#adds)*))
}

pub(crate) fn expand(input: DeriveInput) -> syn::Result<Tokens> {
    let name = &input.ident;
    let generics = crate::bounded(&input.generics, syn::parse_quote!(::layercake::GetSize));
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let body = match &input.data {
        Data::Struct(data) => {
            let fields: Vec<(Tokens, &syn::Field)> = data
                .fields
                .iter()
                .enumerate()
                .map(|(i, field)| {
                    let access = match &field.ident {
                        Some(ident) => quote!(&self.#ident),
                        None => {
                            let index = Index::from(i);
                            quote!(&self.#index)
                        }
                    };
                    (access, field)
                })
                .collect();
            sum(&fields)?
        }
        Data::Enum(data) => {
            let mut arms = Vec::new();
            for variant in &data.variants {
                let ident = &variant.ident;
                let bindings: Vec<_> = (0..variant.fields.len())
                    .map(|i| format_ident!("field_{i}"))
                    .collect();
                let fields: Vec<(Tokens, &syn::Field)> = bindings
                    .iter()
                    .zip(&variant.fields)
                    .map(|(binding, field)| (quote!(#binding), field))
                    .collect();
                let adds = sum(&fields)?;
                let pattern = match &variant.fields {
                    Fields::Named(named) => {
                        let names = named.named.iter().map(|f| &f.ident);
                        quote!(#name::#ident { #(#names: #bindings),* })
                    }
                    Fields::Unnamed(_) => quote!(#name::#ident(#(#bindings),*)),
                    Fields::Unit => quote!(#name::#ident),
                };
                arms.push(quote!(#pattern => { #adds }));
            }
            quote! {
                #[allow(unused_variables)]
                match self { #(#arms)* }
            }
        }
        Data::Union(data) => {
            return Err(syn::Error::new(
                data.union_token.span(),
                "`GetSize` cannot be derived for a union: implement it by hand",
            ));
        }
    };
    Ok(quote! {
        impl #impl_generics ::layercake::GetSize for #name #ty_generics #where_clause {
            fn get_heap_size_with_tracker<__Tracker: ::layercake::weigh::GetSizeTracker>(
                &self,
                tracker: __Tracker,
            ) -> (usize, __Tracker) {
                #[allow(unused_mut)]
                let mut total = 0usize;
                #[allow(unused_mut)]
                let mut tracker = tracker;
                #body
                (total, tracker)
            }
        }
    })
}
