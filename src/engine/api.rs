//! The registry of host functions: each is registered into its Rhai module and recorded, with its
//! doc comment, for the API reference (`vgpu-admin api`).

use rhai::{FuncRegistration, Module, RhaiNativeFunc, Shared};
use serde::Serialize;
use std::collections::BTreeMap;

/// One host function as documented in the API reference.
#[derive(Debug, Clone, Serialize)]
pub struct ApiFunction {
    /// The Rhai module (`vms`), or empty for a global function.
    pub module: &'static str,
    /// The function name.
    pub name: &'static str,
    /// Its parameters, `name: type`.
    pub params: Vec<String>,
    /// What it returns.
    pub returns: String,
    /// Its documentation, one string per line.
    pub doc: Vec<String>,
}

impl ApiFunction {
    /// `vms::get(uuid: string) -> map or ()`.
    pub fn signature(&self) -> String {
        let prefix = if self.module.is_empty() {
            String::new()
        } else {
            format!("{}::", self.module)
        };
        format!(
            "{prefix}{}({}) -> {}",
            self.name,
            self.params.join(", "),
            self.returns
        )
    }
}

/// Collects modules and their documentation while the engine is built.
#[derive(Default)]
pub struct ApiBuilder {
    modules: BTreeMap<&'static str, Module>,
    globals: Module,
    docs: Vec<ApiFunction>,
}

/// Turns Rust type names into the names an admin sees in Rhai.
fn rhai_type(rust: &str) -> String {
    match rust.replace(' ', "").as_str() {
        "&str" | "ImmutableString" | "String" => "string".into(),
        "INT" | "i64" => "int".into(),
        "bool" => "bool".into(),
        "Map" => "map".into(),
        "Array" => "array".into(),
        "Dynamic" => "any".into(),
        "()" => "()".into(),
        "FnPtr" => "function".into(),
        other => other.to_string(),
    }
}

impl ApiBuilder {
    /// Registers `func` as `module::name` (or a global function when `module` is empty).
    ///
    /// `params` are `(name, rust type)` pairs, `returns` the Rust type of the result and `doc` the
    /// lines of the function's doc comment.
    #[allow(clippy::too_many_arguments)]
    pub fn register<A: 'static, const N: usize, const X: bool, R, const F: bool, FUNC>(
        &mut self,
        module: &'static str,
        name: &'static str,
        params: &[(&str, &str)],
        returns: &str,
        doc: &[&str],
        func: FUNC,
    ) where
        R: Clone + 'static,
        FUNC: RhaiNativeFunc<A, N, X, R, F> + 'static,
    {
        let params: Vec<String> = params
            .iter()
            .map(|(n, t)| format!("{n}: {}", rhai_type(t)))
            .collect();
        let returns = rhai_type(returns);
        let doc: Vec<String> = doc.iter().map(|l| l.trim().to_string()).collect();
        let target = if module.is_empty() {
            &mut self.globals
        } else {
            self.modules.entry(module).or_default()
        };
        FuncRegistration::new(name)
            .in_global_namespace()
            .with_volatility(true)
            .set_into_module(target, func);
        self.docs.push(ApiFunction {
            module,
            name,
            params,
            returns,
            doc,
        });
    }

    /// Hands the modules to the engine and returns the documentation.
    pub fn install(self, engine: &mut rhai::Engine) -> Vec<ApiFunction> {
        engine.register_global_module(Shared::new(self.globals));
        for (name, module) in self.modules {
            engine.register_static_module(name, Shared::new(module));
        }
        let mut docs = self.docs;
        docs.sort_by(|a, b| (a.module, a.name).cmp(&(b.module, b.name)));
        docs
    }
}

/// Defines a host function with its doc comment and registers it in one go.
///
/// ```ignore
/// host_fn!(api, ctx, "vms",
///     /// Counts the registered VMs.
///     fn count(ctx) -> Rr<INT> { ... });
/// ```
macro_rules! host_fn {
    ($api:expr, $ctx:expr, $module:literal,
     $(#[doc = $doc:literal])+
     fn $name:ident($c:ident $(, $arg:ident : $ty:ty)* $(,)?) -> Rr<$ret:ty> $body:block) => {{
        $(#[doc = $doc])+
        fn $name($c: &$crate::engine::context::Context $(, $arg: $ty)*)
            -> Result<$ret, Box<rhai::EvalAltResult>> $body
        let ctx = $ctx.clone();
        $api.register(
            $module,
            stringify!($name),
            &[$((stringify!($arg), stringify!($ty))),*],
            stringify!($ret),
            &[$($doc),+],
            move |$($arg: $ty),*| $name(&ctx $(, $arg)*),
        );
    }};
}
pub(crate) use host_fn;
