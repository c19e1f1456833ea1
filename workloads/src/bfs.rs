//! Breadth-first search over a random directed graph in CSR form, checked
//! the way Graph500 validates a BFS tree: every parent is a real in-edge one
//! level up, and no edge skips a level. Irregular, data-dependent access.

use crate::rng;
use rand::RngExt;

const UNREACHED: u32 = u32::MAX;

pub struct Graph {
    offsets: Vec<u32>,
    edges: Vec<u32>,
}

pub struct Tree {
    dist: Vec<u32>,
    parent: Vec<u32>,
}

pub struct Outcome {
    pub reached: usize,
}

/// Bytes per vertex: offset, `degree` edges, and the dist, parent and queue
/// arrays of the search.
pub fn bytes_per_vertex(degree: usize) -> usize {
    4 * (1 + degree + 3)
}

impl Graph {
    /// `vertices` vertices with out-degrees uniform in 1..=2*degree-1.
    pub fn prepare(vertices: usize, degree: usize, seed: u64) -> Graph {
        let mut rng = rng::seeded(seed);
        let mut offsets = Vec::with_capacity(vertices + 1);
        let mut edges = Vec::with_capacity(vertices * degree);
        offsets.push(0);
        for _ in 0..vertices {
            let d = rng.random_range(1..2 * degree);
            for _ in 0..d {
                edges.push(rng.random_range(0..vertices as u32));
            }
            offsets.push(edges.len() as u32);
        }
        Graph { offsets, edges }
    }

    fn vertices(&self) -> usize {
        self.offsets.len() - 1
    }

    fn out(&self, u: usize) -> &[u32] {
        &self.edges[self.offsets[u] as usize..self.offsets[u + 1] as usize]
    }

    pub fn bfs(&self, root: usize) -> Tree {
        let n = self.vertices();
        let mut dist = vec![UNREACHED; n];
        let mut parent = vec![UNREACHED; n];
        let mut queue = Vec::with_capacity(n);
        dist[root] = 0;
        parent[root] = root as u32;
        queue.push(root as u32);
        let mut head = 0;
        while head < queue.len() {
            let u = queue[head] as usize;
            head += 1;
            for &v in self.out(u) {
                if dist[v as usize] == UNREACHED {
                    dist[v as usize] = dist[u] + 1;
                    parent[v as usize] = u as u32;
                    queue.push(v);
                }
            }
        }
        Tree { dist, parent }
    }

    pub fn check(&self, root: usize, t: &Tree) -> Result<Outcome, String> {
        if t.dist[root] != 0 || t.parent[root] != root as u32 {
            return Err("bfs: root is not at level 0".into());
        }
        let mut reached = 0;
        for u in 0..self.vertices() {
            if t.dist[u] == UNREACHED {
                continue;
            }
            reached += 1;
            for &v in self.out(u) {
                let dv = t.dist[v as usize];
                if dv == UNREACHED || dv > t.dist[u] + 1 {
                    return Err(format!("bfs: edge {u}->{v} skips a level"));
                }
            }
            if u != root {
                let p = t.parent[u] as usize;
                if p >= self.vertices()
                    || t.dist[p] == UNREACHED
                    || t.dist[p] + 1 != t.dist[u]
                    || !self.out(p).contains(&(u as u32))
                {
                    return Err(format!(
                        "bfs: parent of {u} is not an in-neighbour one level up"
                    ));
                }
            }
        }
        Ok(Outcome { reached })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_validates() {
        let g = Graph::prepare(20_000, 8, 5);
        let t = g.bfs(0);
        let o = g.check(0, &t).map_err(|e| e.to_string());
        // A random digraph of mean degree 8 has a giant component.
        assert!(o.is_ok_and(|o| o.reached > 15_000));
    }

    #[test]
    fn detects_a_wrong_level() {
        let g = Graph::prepare(5_000, 8, 5);
        let mut t = g.bfs(0);
        let v = (1..5_000).find(|&v| t.dist[v] == 2).unwrap_or(1);
        t.dist[v] = 1;
        assert!(g.check(0, &t).is_err());
    }
}
