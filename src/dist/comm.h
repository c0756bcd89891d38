// The ranks of a data-parallel job (issue 8, docs/distributed.md) and their collectives on
// host memory. `mpirun -np N pgolf ...` starts N processes; MPI bootstraps them and carries
// the CPU collectives. A process not started by an MPI launcher is a world of one, where
// every collective is a no-op, so single-process runs are untouched.
//
// Every collective is watched: one that waits longer than the limit (PGOLF_COMM_TIMEOUT,
// seconds, default 300) means another rank died or hung, and this rank ends the job with a
// message instead of hanging (a Waitless scope lifts the limit where one rank is known to
// work alone for long, e.g. while rank 0 packs the artifact).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace pgolf::dist {

// A collective started and not yet finished; wait() completes it (the destructor waits too).
class Request {
 public:
  Request();
  Request(Request&&) noexcept;
  Request& operator=(Request&&) noexcept;
  ~Request();
  void wait();

  struct Impl;

 private:
  friend class Comm;
  explicit Request(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class Comm {
 public:
  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_rank() const { return local_rank_; }  // among the ranks on this machine
  bool root() const { return rank_ == 0; }
  bool distributed() const { return size_ > 1; }

  // x = Σ over ranks of x, the same bits on every rank (MPI_Allreduce).
  template <typename T>
  void all_reduce_sum(std::span<T> x) const;
  // x = max over ranks of x.
  void all_reduce_max(std::span<double> x) const;
  // Every rank gets root's x (the spans have the same length everywhere).
  template <typename T>
  void broadcast(std::span<T> x, int root = 0) const;
  void broadcast(std::string& s, int root = 0) const;

  // `send` is size() pieces, piece r of counts[r] elements, in rank order; this rank's
  // `recv` (counts[rank()] elements) becomes the element-wise sum of every rank's piece
  // rank() (MPI_Ireduce_scatter).
  template <typename T>
  Request reduce_scatter_sum(std::span<const T> send, std::span<T> recv,
                             std::span<const int64_t> counts) const;
  // `all` (Σ counts elements) becomes every rank's `mine` (counts[r] elements) in rank
  // order (MPI_Iallgatherv).
  template <typename T>
  Request all_gather(std::span<const T> mine, std::span<T> all,
                     std::span<const int64_t> counts) const;

  void barrier() const;

  // Milliseconds this rank has spent inside collectives so far, waiting for the others
  // included (0 in a world of one): the trainer's per-step communication time.
  double waited_ms() const;

  // Fails (pgolf::Error on every rank) unless x holds the same bits on every rank: data
  // parallelism keeps the weights replicated exactly, and a rank that drifted would go on
  // training a different model unnoticed. One 64-bit hash per rank is exchanged.
  void check_identical(std::span<const float> x, const char* what) const;

  struct State;  // the MPI communicator and the watchdog; opaque to callers

  // Marks a wait on the other ranks for the watchdog while it lives (every collective
  // above does; a GPU collective's host-side wait uses it too) and counts it in waited_ms.
  class Watch {
   public:
    Watch(const Comm& c, const char* what);
    ~Watch();
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;

   private:
    State* s_;
    int64_t t0_us_;
  };

  // Lifts the wait limit while it lives (see the top of this file).
  class Waitless {
   public:
    explicit Waitless(const Comm& c);
    ~Waitless();
    Waitless(const Waitless&) = delete;
    Waitless& operator=(const Waitless&) = delete;

   private:
    const Comm& c_;
  };

 private:
  friend Comm& world();
  friend class Session;
  friend class Request;
  Comm() = default;
  int rank_ = 0, size_ = 1, local_rank_ = 0;
  State* state_ = nullptr;
};

// This process's job: a world of one until a Session has joined an MPI launch.
Comm& world();

// Joins the MPI job when the process was started by an MPI launcher (OpenMPI's
// OMPI_COMM_WORLD_SIZE, or PMI_SIZE / PMIX_RANK) and leaves it when destroyed. A build
// without MPI refuses such a launch with a clear error. While the job has several ranks, a
// SIGTERM (what mpirun sends the survivors when a rank dies) prints which rank stopped and
// why before the process exits.
class Session {
 public:
  Session();
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
};

// Ends the whole job from this rank after an error: prints "pgolf: rank r of n: message"
// and aborts every rank (MPI_Abort); a rank other than 0 waits a second first, so that an
// error every rank meets is said once, by rank 0. In a world of one it only prints
// "pgolf: message".
[[noreturn]] void abort_job(const std::string& message, int exit_code);

// Whether the binary was built with MPI (the multi-process path).
bool built_with_mpi();

}  // namespace pgolf::dist
