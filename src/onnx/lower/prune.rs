//! Pruning an expression to the nodes one output needs (shared by constant folding and by the
//! regions cut into modules, so neither depends on the other).

use crate::model::expr::{Expr, Node};

/// The nodes of `e` that `out` needs, renumbered, with `out` last.
pub(super) fn prune(e: &Expr, out: usize) -> crate::Result<Expr> {
    let nodes = e.nodes();
    let mut keep = vec![false; nodes.len()];
    keep[out] = true;
    for i in (1..=out).rev() {
        if keep[i] {
            for o in operands(&nodes[i]) {
                keep[o] = true;
            }
        }
    }
    let mut remap = vec![0usize; nodes.len()];
    let mut kept = vec![Node::Input];
    for i in 1..=out {
        if !keep[i] {
            continue;
        }
        let r = |j: usize| remap[j];
        let node = match &nodes[i] {
            Node::Input => Node::Input,
            Node::Const(c) => Node::Const(*c),
            Node::Column(c) => Node::Column(c.clone()),
            Node::Unary(u, a) => Node::Unary(*u, r(*a)),
            Node::Binary(b, x, y) => Node::Binary(*b, r(*x), r(*y)),
            Node::Where(c, a, b) => Node::Where(r(*c), r(*a), r(*b)),
            Node::Act(act, a) => Node::Act(*act, r(*a)),
        };
        remap[i] = kept.len();
        kept.push(node);
    }
    Expr::from_nodes(kept)
}

fn operands(n: &Node) -> Vec<usize> {
    match n {
        Node::Input | Node::Const(_) | Node::Column(_) => vec![],
        Node::Unary(_, a) | Node::Act(_, a) => vec![*a],
        Node::Binary(_, a, b) => vec![*a, *b],
        Node::Where(c, a, b) => vec![*c, *a, *b],
    }
}
