//! `#[cached_handler]`: caching for async functions, generated at compile time, and
//! `#[derive(GetSize)]` for the weight of cached values. Use them through `layercake`; the
//! generated code refers only to `::layercake::…` paths.

mod cache_key;
mod get_size;

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::{format_ident, quote, quote_spanned};
use syn::{
    Expr, ExprLit, FnArg, GenericArgument, Ident, ItemFn, Lit, LitStr, Meta, Pat, PathArguments,
    ReturnType, Token, Type, parse::Parser, punctuated::Punctuated, spanned::Spanned,
};

/// Derives `layercake::GetSize` (get-size2's trait): the heap a value owns is the sum of its
/// fields' (`#[get_size(ignore)]` leaves a field out). See `layercake::weigh`.
#[proc_macro_derive(GetSize, attributes(get_size))]
pub fn derive_get_size(item: TokenStream) -> TokenStream {
    match syn::parse(item).and_then(get_size::expand) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

/// Derives `layercake::CacheKey`: a type keys cache entries by its fields, in order (an enum
/// by its variant's name, then its fields). See `layercake::CacheKey`.
#[proc_macro_derive(CacheKey)]
pub fn derive_cache_key(item: TokenStream) -> TokenStream {
    match syn::parse(item).and_then(cache_key::expand) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

/// `generics` with `bound` on every type parameter: what a derived impl asks of them.
fn bounded(generics: &syn::Generics, bound: syn::TypeParamBound) -> syn::Generics {
    let mut generics = generics.clone();
    for param in generics.type_params_mut() {
        param.bounds.push(bound.clone());
    }
    generics
}

/// Caches an async function: see `layercake::cached_handler`.
#[proc_macro_attribute]
pub fn cached_handler(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = Tokens::from(item);
    match expand(attr.into(), item.clone()) {
        Ok(tokens) => tokens.into(),
        // The error, and the item as written, so that the error is the only one reported.
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#error #item).into()
        }
    }
}

/// What the result of the function is, for what gets cached.
enum Shape {
    /// Any other type: cached as is.
    Plain,
    /// `Result<T, E>`: `Ok(T)` is cached (or the whole result, with `cache_err`); `E` is
    /// handed to the callers waiting on a failed computation when it is `Clone`.
    Result(Type, Box<Type>),
    /// `Option<T>`: `Some(T)` is cached (or the whole option, with `cache_none`).
    Option(Type),
}

#[derive(Default)]
struct Config {
    ttl: Option<(u64, Span)>,
    stale: Option<(u64, Span)>,
    negative_ttl: Option<(u64, Span)>,
    lock_timeout: Option<u64>,
    upstream_timeout: Option<u64>,
    key: Option<Expr>,
    skip: Vec<Ident>,
    backend: Option<Expr>,
    concurrency: Option<u64>,
    namespace: Option<LitStr>,
    version: Option<String>,
    cache_err: bool,
    cache_none: bool,
    stale_policy: Option<Tokens>,
    preset: Option<Tokens>,
    tags: Vec<LitStr>,
    store_if: Option<Expr>,
}

const KNOWN: &str = "ttl, stale, preset, negative_ttl, store_if, lock_timeout, upstream_timeout, tags, key, skip, backend, concurrency, namespace, version, cache_err, cache_none, stale_policy";

fn error(span: impl Spanned, message: impl std::fmt::Display) -> syn::Error {
    syn::Error::new(span.span(), message)
}

/// Milliseconds from `60` (seconds) or `"90s"`, `"5m"`, `"2h"`, `"1d"`, `"500ms"`.
fn duration(name: &str, value: &Expr) -> syn::Result<u64> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => {
            if int.base10_digits().starts_with('-') {
                return Err(error(int, format!("`{name}` cannot be negative")));
            }
            let secs: u64 = int.base10_parse()?;
            Ok(secs.saturating_mul(1000))
        }
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) => {
            let text_value = text.value();
            let split = text_value
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(text_value.len());
            let (number, unit) = text_value.split_at(split);
            let scale = match unit {
                "ms" => 1,
                "s" => 1000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => 0,
            };
            match number.parse::<u64>() {
                Ok(n) if scale > 0 => Ok(n.saturating_mul(scale)),
                _ => Err(error(
                    text,
                    format!(
                        "`{name}`: {text_value:?} is not a duration; write seconds (`60`) or a number and a unit: \"500ms\", \"90s\", \"5m\", \"2h\", \"1d\""
                    ),
                )),
            }
        }
        Expr::Unary(unary) if matches!(unary.op, syn::UnOp::Neg(_)) => {
            Err(error(value, format!("`{name}` cannot be negative")))
        }
        other => Err(error(
            other,
            format!("`{name}` takes seconds (`60`) or a duration string (\"90s\", \"5m\")"),
        )),
    }
}

fn parse_config(attr: Tokens, args: &[Ident]) -> syn::Result<Config> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr)?;
    let mut config = Config::default();
    let mut seen: Vec<String> = Vec::new();
    for meta in metas {
        let name_ident = meta
            .path()
            .get_ident()
            .cloned()
            .ok_or_else(|| error(meta.path(), format!("unknown attribute; known: {KNOWN}")))?;
        let name = name_ident.to_string();
        if seen.contains(&name) {
            return Err(error(&name_ident, format!("`{name}` is given twice")));
        }
        seen.push(name.clone());
        let value = || match &meta {
            Meta::NameValue(pair) => Ok(&pair.value),
            _ => Err(error(
                &meta,
                format!("`{name}` takes a value: `{name} = …`"),
            )),
        };
        let flag = || match &meta {
            Meta::Path(_) => Ok(true),
            Meta::NameValue(pair) => match &pair.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Bool(b), ..
                }) => Ok(b.value),
                other => Err(error(other, format!("`{name}` is `true` or `false`"))),
            },
            Meta::List(list) => Err(error(
                list,
                format!("`{name}` is a flag: `{name}` or `{name} = true`"),
            )),
        };
        match name.as_str() {
            "ttl" => {
                let value = value()?;
                let ms = duration("ttl", value)?;
                if ms == 0 {
                    return Err(error(
                        value,
                        "`ttl` must be greater than zero: nothing would ever be served from the cache",
                    ));
                }
                config.ttl = Some((ms, value.span()));
            }
            "stale" => {
                let value = value()?;
                config.stale = Some((duration("stale", value)?, name_ident.span()));
            }
            "negative_ttl" => {
                let value = value()?;
                let ms = duration("negative_ttl", value)?;
                if ms == 0 {
                    return Err(error(value, "`negative_ttl` must be greater than zero"));
                }
                config.negative_ttl = Some((ms, name_ident.span()));
            }
            "lock_timeout" | "upstream_timeout" => {
                let value = value()?;
                let ms = duration(&name, value)?;
                if ms == 0 {
                    return Err(error(value, format!("`{name}` must be greater than zero")));
                }
                if name == "lock_timeout" {
                    config.lock_timeout = Some(ms);
                } else {
                    config.upstream_timeout = Some(ms);
                }
            }
            "key" => config.key = Some(value()?.clone()),
            "store_if" => config.store_if = Some(value()?.clone()),
            "tags" => {
                let value = value()?;
                let Expr::Array(array) = value else {
                    return Err(error(
                        value,
                        "`tags` is a list of strings: `tags = [\"users\", \"profiles\"]`",
                    ));
                };
                for element in &array.elems {
                    match element {
                        Expr::Lit(ExprLit {
                            lit: Lit::Str(tag), ..
                        }) if !tag.value().is_empty() => {
                            config.tags.push(tag.clone());
                        }
                        other => return Err(error(other, "a tag is a non-empty string")),
                    }
                }
            }
            "backend" => config.backend = Some(value()?.clone()),
            "skip" => {
                let Meta::List(list) = &meta else {
                    return Err(error(
                        &meta,
                        "`skip` lists arguments: `skip(db, request_id)`",
                    ));
                };
                let names =
                    Punctuated::<Ident, Token![,]>::parse_terminated.parse2(list.tokens.clone())?;
                for skipped in names {
                    if !args.contains(&skipped) {
                        return Err(error(
                            &skipped,
                            format!("`skip`: the function has no argument named `{skipped}`"),
                        ));
                    }
                    config.skip.push(skipped);
                }
            }
            "concurrency" => {
                let value = value()?;
                let Expr::Lit(ExprLit {
                    lit: Lit::Int(int), ..
                }) = value
                else {
                    return Err(error(
                        value,
                        "`concurrency` is a whole number: how many callers of a missing key go upstream at once",
                    ));
                };
                let width: u64 = int.base10_parse()?;
                if width == 0 {
                    return Err(error(
                        int,
                        "`concurrency` must be at least 1: nobody would compute the value",
                    ));
                }
                config.concurrency = Some(width);
            }
            "namespace" => {
                let value = value()?;
                let Expr::Lit(ExprLit {
                    lit: Lit::Str(text),
                    ..
                }) = value
                else {
                    return Err(error(value, "`namespace` is a string"));
                };
                if text.value().is_empty() {
                    return Err(error(text, "`namespace` must not be empty"));
                }
                config.namespace = Some(text.clone());
            }
            "version" => {
                let value = value()?;
                config.version = Some(match value {
                    Expr::Lit(ExprLit {
                        lit: Lit::Int(int), ..
                    }) => int.base10_digits().to_owned(),
                    Expr::Lit(ExprLit {
                        lit: Lit::Str(text),
                        ..
                    }) => text.value(),
                    other => return Err(error(other, "`version` is a number or a string")),
                });
            }
            "cache_err" => config.cache_err = flag()?,
            "cache_none" => config.cache_none = flag()?,
            "stale_policy" => {
                let value = value()?;
                let policy = match value {
                    Expr::Return(ret) if ret.expr.is_none() => quote!(Return),
                    Expr::Path(path) if path.path.is_ident("revalidate") => quote!(Revalidate),
                    Expr::Path(path) if path.path.is_ident("offload") => quote!(OffloadRevalidate),
                    other => {
                        return Err(error(
                            other,
                            "`stale_policy` is `return` (serve stale), `revalidate` (wait for a fresh value) or `offload` (serve stale, refresh in the background)",
                        ));
                    }
                };
                config.stale_policy = Some(policy);
            }
            "preset" => {
                let value = value()?;
                let preset = match value {
                    Expr::Path(path) if path.path.is_ident("real_time") => quote!(RealTime),
                    Expr::Path(path) if path.path.is_ident("short") => quote!(Short),
                    Expr::Path(path) if path.path.is_ident("medium") => quote!(Medium),
                    Expr::Path(path) if path.path.is_ident("long") => quote!(Long),
                    other => {
                        return Err(error(
                            other,
                            "`preset` is `real_time` (10 s), `short` (5 min + 1 min stale), `medium` (1 h + 10 min) or `long` (3 h + 1 h); see `layercake::Preset`",
                        ));
                    }
                };
                config.preset = Some(preset);
            }
            _ => {
                return Err(error(
                    &name_ident,
                    format!("unknown attribute `{name}`; known: {KNOWN}"),
                ));
            }
        }
    }
    if let Some((_, span)) = config.stale {
        if config.ttl.is_none() && config.preset.is_none() {
            return Err(syn::Error::new(
                span,
                "`stale` needs a `ttl` (or a `preset`): an entry is stale only after its ttl",
            ));
        }
    }
    Ok(config)
}

/// `Result<T, E>` → its `T`; `Option<T>` → its `T`.
fn shape(output: &ReturnType) -> Shape {
    let ReturnType::Type(_, ty) = output else {
        return Shape::Plain;
    };
    let Type::Path(path) = &**ty else {
        return Shape::Plain;
    };
    let Some(last) = path.path.segments.last() else {
        return Shape::Plain;
    };
    let PathArguments::AngleBracketed(generics) = &last.arguments else {
        return Shape::Plain;
    };
    let types: Vec<&Type> = generics
        .args
        .iter()
        .filter_map(|arg| match arg {
            GenericArgument::Type(ty) => Some(ty),
            _ => None,
        })
        .collect();
    match (last.ident.to_string().as_str(), types.as_slice()) {
        ("Result", [ok, err]) => Shape::Result((*ok).clone(), Box::new((*err).clone())),
        ("Option", [some]) => Shape::Option((*some).clone()),
        _ => Shape::Plain,
    }
}

/// The first type argument of a path type: `Path<u64>` → `u64`.
fn first_type_argument(ty: &Type) -> Option<Type> {
    let Type::Path(path) = ty else { return None };
    let PathArguments::AngleBracketed(generics) = &path.path.segments.last()?.arguments else {
        return None;
    };
    generics.args.iter().find_map(|arg| match arg {
        GenericArgument::Type(ty) => Some(ty.clone()),
        _ => None,
    })
}

/// Whether a type's path ends in `name` (`axum::extract::State<_>` → `State`).
fn last_segment_is(ty: &Type, name: &str) -> bool {
    matches!(ty, Type::Path(path) if path.path.segments.last().is_some_and(|s| s.ident == name))
}

fn expand(attr: Tokens, item: Tokens) -> syn::Result<Tokens> {
    let function: ItemFn = syn::parse2(item.clone())
        .map_err(|_| error(&item, "#[cached_handler] goes on an `async fn`"))?;
    let sig = &function.sig;
    if sig.asyncness.is_none() {
        return Err(error(
            sig.fn_token,
            "#[cached_handler] caches `async fn`s: make this function `async`",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(error(
            &sig.generics,
            "#[cached_handler] does not support generic functions: each instance would need a cache of its own",
        ));
    }
    // Each argument binds one name: `id: u64`, or an extractor around a name,
    // `Path(id): Path<u64>` (then the key uses the inner value, of the inner type).
    let mut names = Vec::new();
    let mut types = Vec::new();
    let mut states = Vec::new();
    for input in &sig.inputs {
        let typed = match input {
            FnArg::Receiver(receiver) => {
                return Err(error(
                    receiver,
                    "#[cached_handler] caches free functions, not methods",
                ));
            }
            FnArg::Typed(typed) => typed,
        };
        let outer = &*typed.ty;
        let (binding, inner) = match &*typed.pat {
            Pat::Ident(pat) => (pat.ident.clone(), outer.clone()),
            Pat::TupleStruct(extractor) if extractor.elems.len() == 1 => {
                let Some(Pat::Ident(pat)) = extractor.elems.first() else {
                    return Err(error(
                        &extractor.elems,
                        "name the extracted value: `Path(id): Path<u64>`",
                    ));
                };
                let inner = first_type_argument(outer).ok_or_else(|| {
                    error(outer, "an extractor pattern needs the extractor's type with its value type: `Path<u64>`")
                })?;
                (pat.ident.clone(), inner)
            }
            other => {
                return Err(error(
                    other,
                    "#[cached_handler] needs a plain name, or an extractor around one (`Path(id): Path<u64>`)",
                ));
            }
        };
        states.push(last_segment_is(outer, "State"));
        names.push(binding);
        types.push(inner);
    }
    let config = parse_config(attr, &names)?;

    let vis = &function.vis;
    let name = &sig.ident;
    let body = &function.block;
    let attrs = &function.attrs;
    let output = &sig.output;
    let ret: Type = match output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    let shape = shape(output);
    // A handler returning `impl IntoResponse` (or a `Response`): its response is what is cached.
    let handler = match output {
        ReturnType::Type(_, ty) => {
            matches!(&**ty, Type::ImplTrait(_)) || last_segment_is(ty, "Response")
        }
        ReturnType::Default => false,
    };
    if let (Some((_, span)), false) = (config.negative_ttl, handler) {
        return Err(syn::Error::new(
            span,
            "`negative_ttl` applies to HTTP handlers (error statuses); a plain function caches `Ok`/`Some` values, see `cache_err`/`cache_none`",
        ));
    }
    if let (Some(predicate), false) = (&config.store_if, handler) {
        return Err(error(
            predicate,
            "`store_if` applies to HTTP handlers (a response predicate); a plain function caches `Ok`/`Some` values, see `cache_err`/`cache_none`",
        ));
    }
    let store_if = match &config.store_if {
        Some(predicate) => quote_spanned!(predicate.span()=> &#predicate),
        None => quote!(&::layercake::predicate::Always),
    };
    let negative = config.negative_ttl.is_some();
    let lifetime = config.negative_ttl.map(|(ms, _)| {
        quote!(.lifetime(|response: &::layercake::layer::CachedResponse| {
            (response.status().as_u16() >= 400).then_some(::std::time::Duration::from_millis(#ms))
        }))
    });
    let value_type = match &shape {
        _ if handler => syn::parse_quote!(::layercake::layer::CachedResponse),
        Shape::Result(ok, _) if !config.cache_err => ok.clone(),
        Shape::Option(some) if !config.cache_none => some.clone(),
        _ => ret.clone(),
    };

    // The cache, made on first use.
    let backend = match &config.backend {
        Some(expr) => quote_spanned!(expr.span()=> #expr),
        None => quote!(::layercake::Moka::default()),
    };
    let ttl = config
        .ttl
        .map(|(ms, _)| quote!(.ttl(::std::time::Duration::from_millis(#ms))));
    let stale = config
        .stale
        .map(|(ms, _)| quote!(.stale(::std::time::Duration::from_millis(#ms))));
    let lock_timeout = config
        .lock_timeout
        .map(|ms| quote!(.lock_timeout(::std::time::Duration::from_millis(#ms))));
    let upstream_timeout = config
        .upstream_timeout
        .map(|ms| quote!(.upstream_timeout(::std::time::Duration::from_millis(#ms))));
    let concurrency = config.concurrency.map(|n| {
        let n = n as usize;
        quote!(.concurrency(#n))
    });
    let namespace = config.namespace.as_ref().map(|ns| quote!(.namespace(#ns)));
    // Values are weighed for a memory tier's budget the best way their type allows.
    let weigher = quote!(.weigher({
        #[allow(unused_imports)]
        use ::layercake::__private::{WeighByGetSize as _, WeighBySerde as _, WeighBySize as _};
        (&&&::layercake::__private::WeighAs::<#value_type>::new()).weigher()
    }));
    let tags = (!config.tags.is_empty()).then(|| {
        let tags = &config.tags;
        quote!(.tags([#(#tags),*]))
    });
    let preset = config
        .preset
        .as_ref()
        .map(|p| quote!(.preset(::layercake::Preset::#p)));
    let stale_policy = config
        .stale_policy
        .as_ref()
        .map(|p| quote!(.stale_policy(::layercake::StalePolicy::#p)));
    let version = config.version.clone().unwrap_or_else(|| "1".to_owned());
    let function_path = quote!(::core::concat!(
        ::core::module_path!(),
        "::",
        ::core::stringify!(#name)
    ));

    // The key: the function, its version, then the arguments not skipped (or `key = …`).
    // `State` is the application's, not the request's: never part of the key or of the
    // generated `key_for`/`invalidate`.
    let params: Vec<(&Ident, &Type)> = names
        .iter()
        .zip(&types)
        .zip(&states)
        .filter(|(_, state)| !**state)
        .map(|(arg, _)| arg)
        .collect();
    let keyed: Vec<(&Ident, &Type)> = params
        .iter()
        .copied()
        .filter(|(n, _)| !config.skip.contains(n))
        .collect();
    let key_parts = match &config.key {
        Some(expr) => quote_spanned!(expr.span()=> {
            #[allow(unused_imports)]
            use ::layercake::__private::{ViaHash as _, ViaNothing as _, ViaSerde as _};
            let __part = &(#expr);
            ::layercake::cached_handler_key_part(
                (&&&::layercake::__private::KeyArg(__part)).push_key(&mut *__key),
                __part,
            );
        }),
        None => {
            let pushes = keyed.iter().map(|(n, ty)| {
                quote_spanned!(ty.span()=> {
                    #[allow(unused_imports)]
                    use ::layercake::__private::{ViaHash as _, ViaNothing as _, ViaSerde as _};
                    ::layercake::cached_handler_key_part::<#ty>(
                        (&&&::layercake::__private::KeyArg(#n)).push_key(&mut *__key),
                        #n,
                    );
                })
            });
            quote!(#(#pushes)*)
        }
    };
    let ref_params: Vec<Tokens> = params.iter().map(|(n, ty)| quote!(#n: &#ty)).collect();
    let value_params: Vec<Tokens> = params.iter().map(|(n, ty)| quote!(#n: #ty)).collect();
    let param_names: Vec<&Ident> = params.iter().map(|(n, _)| *n).collect();
    let value_assertion =
        quote_spanned!(ret.span()=> ::layercake::__private::assert_cached_value::<#value_type>(););

    // Calls the original body, and returns what the cache gives.
    let compute =
        quote!(move || async move { let __result: #ret = async move #body.await; __result });
    // How a failed computation's error reaches the callers waiting on it: a clone each when
    // the error type is `Clone`, else they compute on their own.
    let share = |err: &Type| {
        quote_spanned!(err.span()=> {
            #[allow(unused_imports)]
            use ::layercake::__private::{NoShare as _, ViaClone as _};
            (&&::layercake::__private::Share::<#err>::new()).share()
        })
    };
    let module = format_ident!("{}", name);
    // Per shape: the computation handed to the cache, how its error is shared with waiting
    // callers, and what the function returns from `__served` (the cache's answer).
    let (compute, share, answer) = match &shape {
        _ if handler => (
            quote!(move || async move {
                let __result = async move #body.await;
                ::layercake::__private::handler::to_cached(__result, #negative, #store_if).await
            }),
            quote!(::layercake::__private::handler::share),
            quote! {
                match __served {
                    (::core::result::Result::Ok(cached), served) => ::layercake::__private::handler::from_cached(cached, served),
                    (::core::result::Result::Err(passed), _) => passed.into_response(),
                }
            },
        ),
        Shape::Result(_, err) if !config.cache_err => (compute, share(err), quote!(__served.0)),
        Shape::Option(_) if !config.cache_none => (
            quote!(move || async move {
                let __result: #ret = async move #body.await;
                __result.ok_or(::layercake::__private::NotCached)
            }),
            quote!(
                |_: &::layercake::__private::NotCached| ::core::option::Option::Some(
                    ::layercake::__private::NotCached
                )
            ),
            quote!(__served.0.ok()),
        ),
        _ => (
            quote!(move || async move {
                let __result: #ret = async move #body.await;
                ::core::result::Result::<_, ::core::convert::Infallible>::Ok(__result)
            }),
            quote!(|never: &::core::convert::Infallible| match *never {}),
            quote! {
                match __served.0 {
                    ::core::result::Result::Ok(value) => value,
                    ::core::result::Result::Err(never) => match never {},
                }
            },
        ),
    };
    // A memory hit with nothing left to do is answered at once; anything else (a lower tier,
    // a refresh, a computation) goes through the cache's future.
    let call = quote! {
        let __served = match #module::__begin(#(&#param_names),*).into_ready() {
            ::core::result::Result::Ok(__served) => __served,
            ::core::result::Result::Err(__begun) => {
                #module::cache().try_get_or_compute_served(__begun, #compute, #share).await
            }
        };
        #answer
    };
    let inputs = &sig.inputs;

    Ok(quote! {
        #(#attrs)*
        #vis async fn #name(#inputs) #output {
            #value_assertion
            #call
        }

        /// The cache of the function of the same name: its key, its invalidation, its counters.
        #[allow(dead_code, non_snake_case, clippy::all)]
        #vis mod #module {
            #[allow(unused_imports)]
            use super::*;

            static SLOT: ::std::sync::OnceLock<::std::boxed::Box<dyn ::core::any::Any + ::core::marker::Send + ::core::marker::Sync>> = ::std::sync::OnceLock::new();

            /// The function's cache (made on first use).
            pub fn cache() -> &'static ::layercake::Cache<#value_type, impl ::layercake::Backend<#value_type>> {
                #value_assertion
                ::layercake::__private::cache(&SLOT, || {
                    ::layercake::Cache::builder(#backend)
                        #weigher
                        #preset #ttl #stale #stale_policy #concurrency #lock_timeout #upstream_timeout
                        #namespace #lifetime #tags
                        .build()
                        .expect("the configuration was checked by #[cached_handler]")
                })
            }

            static PREFIX: ::std::sync::OnceLock<::layercake::Key> = ::std::sync::OnceLock::new();

            #[doc(hidden)]
            #[allow(unused_variables)]
            pub fn __key(__key: &mut ::layercake::KeyBuilder, #(#ref_params),*) {
                // The cache's prefix, the function's path and its version: encoded once, copied
                // into each key as one run of bytes.
                __key.push_key(PREFIX.get_or_init(|| {
                    let mut __prefix = cache().key_prefix().to_builder();
                    __prefix.push(#function_path);
                    __prefix.push(#version);
                    __prefix.build()
                }));
                #key_parts
            }

            /// Looks the arguments' key up where it is built (no copy of the builder).
            #[doc(hidden)]
            #[inline]
            pub fn __begin(#(#ref_params),*) -> ::layercake::__private::Begun<#value_type> {
                let mut __builder = ::layercake::KeyBuilder::default();
                __key(&mut __builder, #(#param_names),*);
                cache().begin(&__builder)
            }

            /// The key the function's result is stored under for these arguments.
            pub fn key_for(#(#value_params),*) -> ::layercake::Key {
                let mut __builder = ::layercake::KeyBuilder::default();
                __key(&mut __builder, #(&#param_names),*);
                __builder.build()
            }

            /// Marks the cached result for these arguments stale in every tier (a soft purge):
            /// computed again by the next call, still served if that computation fails inside
            /// the cache's stale-if-error window.
            pub async fn soft_invalidate(#(#value_params),*) -> ::core::result::Result<::layercake::Invalidated, ::layercake::BackendError> {
                cache().soft_invalidate_key(&key_for(#(#param_names),*)).await
            }

            /// Removes every cached result of the function (whatever the arguments) from every
            /// tier of its cache that can enumerate its keys.
            pub async fn clear() -> ::core::result::Result<::layercake::Invalidated, ::layercake::BackendError> {
                let mut function = ::std::string::String::new();
                ::layercake::backends::key::push_readable(&mut function, #function_path.as_bytes());
                let function = ::layercake::backends::key::glob_escape(&function);
                cache().invalidate_pattern(&::std::format!("{function}:*")).await
            }

            /// Removes every cached result carrying any of `tags` (the function's `tags = […]`,
            /// or tags given per call through `cache().with_tags(…)`) from every tier; entries
            /// of other caches on the same store with these tags go too.
            pub async fn invalidate_tags<T: ::core::convert::Into<::std::sync::Arc<str>>>(tags: impl ::core::iter::IntoIterator<Item = T>) -> ::core::result::Result<::layercake::Invalidated, ::layercake::BackendError> {
                cache().invalidate_tags(tags).await
            }

            /// Removes the cached result for these arguments from every tier of the cache's
            /// backend: what it removed, counted in the cache's stats, or a tier's failure.
            pub async fn invalidate(#(#value_params),*) -> ::core::result::Result<::layercake::Invalidated, ::layercake::BackendError> {
                cache().invalidate_key(&key_for(#(#param_names),*)).await
            }
        }
    })
}
