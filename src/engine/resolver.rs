//! `import "name" as x;` in a script: finds `stdlib/<name>.rhai` in the admin's directory first,
//! then among the bundled modules, and compiles each module once per run.

use super::context::Context;
use crate::scripts::Catalog;
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Resolves stdlib modules for scripts.
pub struct StdlibResolver {
    catalog: Catalog,
    ctx: Rc<Context>,
    cache: RefCell<HashMap<String, Shared<Module>>>,
}

impl StdlibResolver {
    /// A resolver reading from `catalog`.
    pub fn new(catalog: Catalog, ctx: Rc<Context>) -> Self {
        StdlibResolver {
            catalog,
            ctx,
            cache: RefCell::new(HashMap::new()),
        }
    }
}

impl ModuleResolver for StdlibResolver {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        if let Some(module) = self.cache.borrow().get(path) {
            return Ok(module.clone());
        }
        let valid = !path.is_empty()
            && path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        let script = if valid {
            self.catalog
                .find(&format!("stdlib/{path}.rhai"))
                .map_err(|e| EvalAltResult::ErrorSystem("cannot load module".into(), e.into()))?
        } else {
            None
        };
        let script =
            script.ok_or_else(|| EvalAltResult::ErrorModuleNotFound(path.to_string(), pos))?;
        let name = script.source_name();
        self.ctx.remember_source(&name, &script.text);
        let in_module =
            |e: Box<EvalAltResult>| Box::new(EvalAltResult::ErrorInModule(name.clone(), e, pos));
        let mut ast = engine
            .compile(&*script.text)
            .map_err(|e| in_module(e.into()))?;
        ast.set_source(name.as_str());
        let module = Module::eval_ast_as_new(Scope::new(), &ast, engine).map_err(in_module)?;
        let module = Shared::new(module);
        self.cache
            .borrow_mut()
            .insert(path.to_string(), module.clone());
        Ok(module)
    }
}
