//! `MpiWorld`: MPI's `COMM_WORLD` through the `mpi` crate (cargo feature `mpi`). Started
//! by `mpirun -np N nabla ...`, each process is one rank; started without `mpirun`, it is
//! a world of one. MPI's default error handler aborts the whole job on a failed
//! collective, and `mpirun` kills every rank when one dies, so a lost rank never leaves
//! the others waiting (README, "Training on several machines (MPI)").

use super::Collective;
use crate::error::{Error, Result};
use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives, Root};
use std::cell::RefCell;

pub struct MpiWorld {
    /// Finalizes MPI when dropped, so it lives as long as the world.
    _universe: Universe,
    world: SimpleCommunicator,
    /// The all-reduce's receive buffer, reused between steps.
    scratch: RefCell<Vec<f32>>,
}

impl MpiWorld {
    /// Initializes MPI (once per process; a second call is an error).
    pub fn init() -> Result<MpiWorld> {
        let universe = mpi::initialize().ok_or_else(|| {
            Error::invalid("MPI: already initialized in this process (call MpiWorld::init once)")
        })?;
        let world = universe.world();
        Ok(MpiWorld {
            _universe: universe,
            world,
            scratch: RefCell::new(Vec::new()),
        })
    }
}

impl Collective for MpiWorld {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }
    fn size(&self) -> usize {
        self.world.size() as usize
    }
    fn all_reduce_sum(&self, buf: &mut [f32]) -> Result<()> {
        if self.size() == 1 {
            return Ok(());
        }
        let mut scratch = self.scratch.borrow_mut();
        scratch.clear();
        scratch.resize(buf.len(), 0.0);
        self.world
            .all_reduce_into(&buf[..], &mut scratch[..], SystemOperation::sum());
        buf.copy_from_slice(&scratch);
        Ok(())
    }
    fn all_reduce_sum_f64(&self, buf: &mut [f64]) -> Result<()> {
        if self.size() == 1 {
            return Ok(());
        }
        // Small buffers (a few values per batch-norm channel): a fresh receive buffer.
        let mut sum = vec![0.0f64; buf.len()];
        self.world
            .all_reduce_into(&buf[..], &mut sum[..], SystemOperation::sum());
        buf.copy_from_slice(&sum);
        Ok(())
    }
    fn broadcast(&self, buf: &mut [f32]) -> Result<()> {
        if self.size() > 1 {
            self.world.process_at_rank(0).broadcast_into(buf);
        }
        Ok(())
    }
    fn broadcast_bytes(&self, bytes: &mut Vec<u8>) -> Result<()> {
        if self.size() == 1 {
            return Ok(());
        }
        let root = self.world.process_at_rank(0);
        let mut len = bytes.len() as u64;
        root.broadcast_into(&mut len);
        bytes.resize(len as usize, 0);
        root.broadcast_into(&mut bytes[..]);
        Ok(())
    }
    fn barrier(&self) -> Result<()> {
        self.world.barrier();
        Ok(())
    }
    fn describe(&self) -> String {
        format!("MPI, rank {} of {}", self.rank(), self.size())
    }
    fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}
