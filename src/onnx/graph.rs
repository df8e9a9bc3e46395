//! The graph as the importer needs it: checked for the shape of an MLP's file (one data input
//! `[batch, features…]` with a dynamic or fixed batch, one output, every value defined once,
//! every used value defined), with the nodes the output depends on in topological order (dead
//! code is left out) and the number of uses of each value.

use std::collections::{BTreeSet, HashMap};

use crate::error::escape;

use super::proto::{GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto, dtype};
use super::tensor::element_count;
use super::{MAX_NODES, MAX_RANK};

/// A checked graph.
#[derive(Debug)]
pub(crate) struct Graph<'m> {
    /// The nodes the output depends on, in topological order, each with its index in the file.
    pub nodes: Vec<(usize, &'m NodeProto)>,
    /// The data input.
    pub input: Input<'m>,
    /// The output.
    pub output: Output<'m>,
    /// The initializers by name.
    pub initializers: HashMap<&'m str, &'m TensorProto>,
    /// How many inputs of those nodes (and the graph output) use each value.
    pub uses: HashMap<&'m str, usize>,
    /// The version of the standard operator set, when the file says.
    pub opset: Option<i64>,
}

/// The graph's data input.
#[derive(Debug)]
pub(crate) struct Input<'m> {
    /// Its name.
    pub name: &'m str,
    /// Its dimensions after the batch axis (`[13]` for `[batch, 13]`).
    pub dims: Vec<usize>,
    /// The batch size when the file fixes it (exported without a dynamic axis).
    pub fixed_batch: Option<usize>,
}

/// The graph's output.
#[derive(Debug)]
pub(crate) struct Output<'m> {
    /// Its name.
    pub name: &'m str,
    /// Its declared width (the last dimension of a declared `[batch, N]`), if declared.
    pub width: Option<usize>,
}

/// `'name'`, escaped and shortened, for messages.
pub(crate) fn quote(s: &str) -> String {
    const MAX: usize = 120;
    let mut out = escape(s).into_owned();
    if out.chars().count() > MAX {
        out = out.chars().take(MAX).collect::<String>() + "…";
    }
    format!("'{out}'")
}

/// How a node is named in messages: `node '/0/Gemm' (Gemm, #3)`.
pub(crate) fn describe(node: &NodeProto, index: usize) -> String {
    if node.op_type.is_empty() {
        format!("node {} (#{index}, no op_type)", quote(&node.name))
    } else if node.name.is_empty() {
        format!("node #{index} ({})", quote(&node.op_type))
    } else {
        format!(
            "node {} ({}, #{index})",
            quote(&node.name),
            escape_short(&node.op_type)
        )
    }
}

fn escape_short(s: &str) -> String {
    let q = quote(s);
    q[1..q.len() - 1].to_string()
}

/// Checks `model`'s graph and orders its nodes.
pub(crate) fn build(model: &ModelProto) -> Result<Graph<'_>, String> {
    let g: &GraphProto = model
        .graph
        .as_ref()
        .ok_or("the file has no graph (is it an ONNX model?)")?;
    if g.node.len() > MAX_NODES {
        return Err(format!(
            "the graph has {} nodes; at most {MAX_NODES} are supported",
            g.node.len()
        ));
    }
    if !g.sparse_initializer.is_empty() {
        return Err("the graph has sparse initializers, which are not supported".into());
    }
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version);

    let mut initializers: HashMap<&str, &TensorProto> = HashMap::new();
    for t in &g.initializer {
        if t.name.is_empty() {
            return Err("an initializer has no name".into());
        }
        if initializers.insert(&t.name, t).is_some() {
            return Err(format!("two initializers are named {}", quote(&t.name)));
        }
    }

    // The data input: the one graph input no initializer backs (ONNX IR < 4 lists initializers
    // among the inputs too).
    let data: Vec<&ValueInfoProto> = g
        .input
        .iter()
        .filter(|v| !initializers.contains_key(v.name.as_str()))
        .collect();
    let input = match data.as_slice() {
        [one] => read_input(one)?,
        [] => {
            return Err("the graph has no input: an MLP takes one [batch, features] tensor".into());
        }
        many => {
            let names: Vec<String> = many.iter().take(8).map(|v| quote(&v.name)).collect();
            return Err(format!(
                "the graph has {} inputs ({}{}); an MLP takes exactly one [batch, features] tensor",
                many.len(),
                names.join(", "),
                if many.len() > 8 { ", …" } else { "" }
            ));
        }
    };
    let output = match g.output.as_slice() {
        [one] => read_output(one)?,
        [] => return Err("the graph has no output".into()),
        many => {
            let names: Vec<String> = many.iter().take(8).map(|v| quote(&v.name)).collect();
            return Err(format!(
                "the graph has {} outputs ({}{}); an MLP has exactly one",
                many.len(),
                names.join(", "),
                if many.len() > 8 { ", …" } else { "" }
            ));
        }
    };

    // Every value is defined once: by the input, an initializer, or one node output.
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, node) in g.node.iter().enumerate() {
        for out in node.output.iter().filter(|o| !o.is_empty()) {
            if out == input.name || initializers.contains_key(out.as_str()) {
                return Err(format!(
                    "{} writes {}, which is already the graph input or an initializer",
                    describe(node, i),
                    quote(out)
                ));
            }
            if let Some(&j) = producer.get(out.as_str()) {
                return Err(format!(
                    "{} and {} both write {}; each value must have one producer",
                    describe(&g.node[j], j),
                    describe(node, i),
                    quote(out)
                ));
            }
            producer.insert(out, i);
        }
    }

    // Dependencies and undefined values.
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); g.node.len()];
    let mut waiting: Vec<usize> = vec![0; g.node.len()];
    for (i, node) in g.node.iter().enumerate() {
        let mut deps = BTreeSet::new();
        for name in node.input.iter().filter(|n| !n.is_empty()) {
            if let Some(&p) = producer.get(name.as_str()) {
                deps.insert(p);
            } else if name != input.name && !initializers.contains_key(name.as_str()) {
                return Err(format!(
                    "{} reads {}, which no node writes and no initializer holds (a missing \
                     initializer?)",
                    describe(node, i),
                    quote(name)
                ));
            }
        }
        waiting[i] = deps.len();
        for p in deps {
            users[p].push(i);
        }
    }
    if output.name != input.name
        && !producer.contains_key(output.name)
        && !initializers.contains_key(output.name)
    {
        return Err(format!(
            "the graph output {} is not written by any node",
            quote(output.name)
        ));
    }

    // Kahn's algorithm, lowest file index first: a sorted file keeps its order.
    let mut ready: BTreeSet<usize> = (0..g.node.len()).filter(|&i| waiting[i] == 0).collect();
    let mut nodes = Vec::with_capacity(g.node.len());
    while let Some(i) = ready.pop_first() {
        nodes.push((i, &g.node[i]));
        for &u in &users[i] {
            waiting[u] -= 1;
            if waiting[u] == 0 {
                ready.insert(u);
            }
        }
    }
    if nodes.len() != g.node.len() {
        let stuck = (0..g.node.len()).find(|&i| waiting[i] > 0).unwrap_or(0);
        return Err(format!(
            "the graph has a cycle (through {})",
            describe(&g.node[stuck], stuck)
        ));
    }
    // Nodes the output does not depend on are dead code: left out (their ops need not be
    // supported). Uses are counted among the live nodes.
    let mut needed: BTreeSet<&str> = BTreeSet::from([output.name]);
    let mut live = vec![false; nodes.len()];
    for (k, &(_, node)) in nodes.iter().enumerate().rev() {
        if node.output.iter().any(|o| needed.contains(o.as_str())) {
            live[k] = true;
            needed.extend(
                node.input
                    .iter()
                    .filter(|n| !n.is_empty())
                    .map(String::as_str),
            );
        }
    }
    let nodes: Vec<(usize, &NodeProto)> = nodes
        .into_iter()
        .zip(live)
        .filter_map(|(n, l)| l.then_some(n))
        .collect();
    let mut uses: HashMap<&str, usize> = HashMap::from([(output.name, 1)]);
    for &(_, node) in &nodes {
        for name in node.input.iter().filter(|n| !n.is_empty()) {
            *uses.entry(name).or_insert(0) += 1;
        }
    }
    Ok(Graph {
        nodes,
        input,
        output,
        initializers,
        uses,
        opset,
    })
}

fn float_type(t: i32) -> bool {
    matches!(
        t,
        dtype::FLOAT | dtype::DOUBLE | dtype::FLOAT16 | dtype::BFLOAT16
    )
}

fn read_input(v: &ValueInfoProto) -> Result<Input<'_>, String> {
    let name = quote(&v.name);
    let t = v
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .ok_or_else(|| format!("the graph input {name} is not a tensor"))?;
    if !float_type(t.elem_type) {
        return Err(format!(
            "the graph input {name} is {}; an MLP takes FLOAT (or DOUBLE, FLOAT16, BFLOAT16, \
             computed in float32)",
            dtype::name(t.elem_type)
        ));
    }
    let dims = &t
        .shape
        .as_ref()
        .ok_or_else(|| {
            format!("the graph input {name} has no shape; the importer needs its feature width")
        })?
        .dim;
    if dims.len() < 2 {
        return Err(format!(
            "the graph input {name} has {} dimension(s); an MLP takes [batch, features]",
            dims.len()
        ));
    }
    if dims.len() > MAX_RANK {
        return Err(format!(
            "the graph input {name} has {} dimensions; at most {MAX_RANK} are supported",
            dims.len()
        ));
    }
    let fixed_batch = match dims[0].dim_value {
        Some(v) if v >= 1 => usize::try_from(v).ok(),
        Some(v) => return Err(format!("the graph input {name} has batch size {v}")),
        None => None,
    };
    let mut features = Vec::with_capacity(dims.len() - 1);
    for (k, d) in dims.iter().enumerate().skip(1) {
        match d
            .dim_value
            .and_then(|v| usize::try_from(v).ok())
            .filter(|&v| v >= 1)
        {
            Some(v) => features.push(v),
            None => {
                let what = match (&d.dim_param, d.dim_value) {
                    (Some(p), _) => format!("symbolic ({})", quote(p)),
                    (None, Some(v)) => format!("{v}"),
                    (None, None) => "unknown".into(),
                };
                return Err(format!(
                    "dimension {k} of the graph input {name} is {what}; the importer needs a \
                     fixed feature width (only the batch axis, 0, may be dynamic)"
                ));
            }
        }
    }
    element_count(&features).map_err(|e| format!("the graph input {name} {e}"))?;
    Ok(Input {
        name: &v.name,
        dims: features,
        fixed_batch,
    })
}

fn read_output(v: &ValueInfoProto) -> Result<Output<'_>, String> {
    let t = v.r#type.as_ref().and_then(|t| t.tensor_type.as_ref());
    if let Some(t) = t
        && t.elem_type != 0
        && !float_type(t.elem_type)
    {
        return Err(format!(
            "the graph output {} is {}; an MLP gives FLOAT",
            quote(&v.name),
            dtype::name(t.elem_type)
        ));
    }
    let width = t
        .and_then(|t| t.shape.as_ref())
        .filter(|s| s.dim.len() == 2)
        .and_then(|s| s.dim[1].dim_value)
        .and_then(|v| usize::try_from(v).ok());
    Ok(Output {
        name: &v.name,
        width,
    })
}
