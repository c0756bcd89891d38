// The MPI side of dist/comm.h. Built with MPI (PGOLF_HAVE_MPI) or without: without it a
// process is always a world of one and a launch by mpirun is refused.
#include "dist/comm.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <thread>

#include "core/error.h"

#ifdef PGOLF_HAVE_MPI
#include <mpi.h>
#endif

namespace pgolf::dist {
namespace {

// The launchers' environment: OpenMPI's mpirun, and PMI / PMIx (MPICH, Slurm).
bool launched_by_mpi() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(name)) return true;
  return false;
}

double wait_limit_seconds() {
  const char* v = std::getenv("PGOLF_COMM_TIMEOUT");
  if (!v || !*v) return 300.0;
  char* end = nullptr;
  const double s = std::strtod(v, &end);
  PGOLF_CHECK(end && *end == 0 && s > 0, "PGOLF_COMM_TIMEOUT must be a positive number of "
              "seconds, got '", v, "'");
  return s;
}

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch()).count();
}

int g_rank = 0, g_size = 1;  // for the signal handler, which may only read plain globals

// Written with write(2) only: async-signal-safe.
extern "C" void on_sigterm(int) {
  char msg[160];
  const int n = std::snprintf(msg, sizeof msg,
                              "pgolf: rank %d of %d: stopped by the launcher (SIGTERM): another "
                              "rank failed or the job was cancelled\n", g_rank, g_size);
  if (n > 0) (void)!write(2, msg, size_t(n));
  _exit(128 + SIGTERM);
}

}  // namespace

bool built_with_mpi() {
#ifdef PGOLF_HAVE_MPI
  return true;
#else
  return false;
#endif
}

Comm& world() {
  static Comm c;
  return c;
}

#ifdef PGOLF_HAVE_MPI

// The watchdog: every collective marks when it began; a thread checks once a second and ends
// the job when one has waited past the limit (never a silent hang).
struct Comm::State {
  MPI_Comm comm = MPI_COMM_NULL;
  double limit_s = 300;
  std::atomic<int64_t> waiting_since{0};  // ms, 0 = no collective in flight
  std::atomic<int64_t> waited_us{0};      // in collectives so far
  std::atomic<const char*> waiting_on{""};
  std::atomic<int> waitless{0};
  std::atomic<bool> stop{false};
  std::thread watchdog;

  void watch() {
    while (!stop.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      const int64_t since = waiting_since.load();
      if (since == 0 || waitless.load() > 0) continue;
      const double waited = double(now_us() / 1000 - since) / 1000.0;
      if (waited < limit_s) continue;
      std::fprintf(stderr,
                   "pgolf: rank %d of %d: %s has waited %.0f s for the other ranks "
                   "(PGOLF_COMM_TIMEOUT=%.0f); one of them failed or hung, ending the job\n",
                   g_rank, g_size, waiting_on.load(), waited, limit_s);
      std::fflush(stderr);
      _exit(1);  // the launcher sees a failed rank and stops the others
    }
  }
};

Comm::Watch::Watch(const Comm& c, const char* what) : s_(c.state_), t0_us_(now_us()) {
  if (!s_) return;
  s_->waiting_on = what;
  s_->waiting_since = t0_us_ / 1000;
}

Comm::Watch::~Watch() {
  if (!s_) return;
  s_->waiting_since = 0;
  s_->waited_us += now_us() - t0_us_;
}

namespace {

template <typename T>
MPI_Datatype mpi_type() {
  if constexpr (std::is_same_v<T, float>) return MPI_FLOAT;
  else if constexpr (std::is_same_v<T, double>) return MPI_DOUBLE;
  else if constexpr (std::is_same_v<T, int64_t>) return MPI_INT64_T;
  else if constexpr (std::is_same_v<T, char>) return MPI_CHAR;
  else static_assert(sizeof(T) == 0, "no MPI type for this element type");
}

int as_count(int64_t n) {
  PGOLF_CHECK(n >= 0 && n <= std::numeric_limits<int>::max(), "a collective of ", n,
              " elements is beyond MPI's int counts");
  return int(n);
}

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  fail(what, " failed: ", std::string(text, size_t(len)));
}

}  // namespace

struct Request::Impl {
  MPI_Request req = MPI_REQUEST_NULL;
  const Comm* comm = nullptr;
  const char* what = "";
  std::vector<int> counts, displs;  // MPI reads them until the request completes
};

Request::Request() = default;
Request::Request(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Request::Request(Request&&) noexcept = default;
Request& Request::operator=(Request&& o) noexcept {
  if (this != &o) {
    if (impl_) wait();
    impl_ = std::move(o.impl_);
  }
  return *this;
}
Request::~Request() {
  if (impl_ && impl_->req != MPI_REQUEST_NULL) MPI_Wait(&impl_->req, MPI_STATUS_IGNORE);
}
void Request::wait() {
  if (!impl_ || impl_->req == MPI_REQUEST_NULL) return;
  Comm::Watch w(*impl_->comm, impl_->what);
  check(MPI_Wait(&impl_->req, MPI_STATUS_IGNORE), impl_->what);
}

template <typename T>
void Comm::all_reduce_sum(std::span<T> x) const {
  if (!distributed() || x.empty()) return;
  Watch w(*this, "an all-reduce");
  check(MPI_Allreduce(MPI_IN_PLACE, x.data(), as_count(int64_t(x.size())), mpi_type<T>(), MPI_SUM,
                      state_->comm), "MPI_Allreduce");
}

void Comm::all_reduce_max(std::span<double> x) const {
  if (!distributed() || x.empty()) return;
  Watch w(*this, "an all-reduce");
  check(MPI_Allreduce(MPI_IN_PLACE, x.data(), as_count(int64_t(x.size())), MPI_DOUBLE, MPI_MAX,
                      state_->comm), "MPI_Allreduce");
}

template <typename T>
void Comm::broadcast(std::span<T> x, int root) const {
  if (!distributed() || x.empty()) return;
  Watch w(*this, "a broadcast");
  check(MPI_Bcast(x.data(), as_count(int64_t(x.size())), mpi_type<T>(), root, state_->comm),
        "MPI_Bcast");
}

void Comm::broadcast(std::string& s, int root) const {
  if (!distributed()) return;
  int64_t n = int64_t(s.size());
  broadcast(std::span<int64_t>(&n, 1), root);
  s.resize(size_t(n));
  broadcast(std::span<char>(s.data(), s.size()), root);
}

namespace {
void counts_and_displacements(std::span<const int64_t> counts, int size, std::vector<int>& c,
                              std::vector<int>& d) {
  PGOLF_CHECK(int64_t(counts.size()) == size, "a collective needs one count per rank");
  int64_t at = 0;
  for (int64_t n : counts) {
    c.push_back(as_count(n));
    d.push_back(as_count(at));
    at += n;
  }
}
}  // namespace

template <typename T>
Request Comm::reduce_scatter_sum(std::span<const T> send, std::span<T> recv,
                                 std::span<const int64_t> counts) const {
  auto impl = std::make_unique<Request::Impl>();
  impl->comm = this;
  impl->what = "a reduce-scatter";
  std::vector<int> unused;
  counts_and_displacements(counts, size_, impl->counts, unused);
  PGOLF_CHECK(int64_t(recv.size()) == counts[size_t(rank_)], "reduce-scatter: this rank's "
              "buffer holds ", recv.size(), " elements, its piece ", counts[size_t(rank_)]);
  if (!distributed()) {
    std::copy(send.begin(), send.begin() + int64_t(recv.size()), recv.begin());
    return Request(std::move(impl));
  }
  check(MPI_Ireduce_scatter(send.data(), recv.data(), impl->counts.data(), mpi_type<T>(), MPI_SUM,
                            state_->comm, &impl->req), "MPI_Ireduce_scatter");
  return Request(std::move(impl));
}

template <typename T>
Request Comm::all_gather(std::span<const T> mine, std::span<T> all,
                         std::span<const int64_t> counts) const {
  auto impl = std::make_unique<Request::Impl>();
  impl->comm = this;
  impl->what = "an all-gather";
  counts_and_displacements(counts, size_, impl->counts, impl->displs);
  PGOLF_CHECK(int64_t(mine.size()) == counts[size_t(rank_)], "all-gather: this rank sends ",
              mine.size(), " elements, its count is ", counts[size_t(rank_)]);
  if (!distributed()) {
    std::copy(mine.begin(), mine.end(), all.begin());
    return Request(std::move(impl));
  }
  check(MPI_Iallgatherv(mine.data(), as_count(int64_t(mine.size())), mpi_type<T>(), all.data(),
                        impl->counts.data(), impl->displs.data(), mpi_type<T>(), state_->comm,
                        &impl->req), "MPI_Iallgatherv");
  return Request(std::move(impl));
}

void Comm::barrier() const {
  if (!distributed()) return;
  Watch w(*this, "a barrier");
  check(MPI_Barrier(state_->comm), "MPI_Barrier");
}

double Comm::waited_ms() const { return state_ ? double(state_->waited_us.load()) / 1000.0 : 0.0; }

Comm::Waitless::Waitless(const Comm& c) : c_(c) {
  if (c_.state_) ++c_.state_->waitless;
}
Comm::Waitless::~Waitless() {
  if (c_.state_) --c_.state_->waitless;
}

Session::Session() {
  if (!launched_by_mpi()) return;
  int provided = 0;
  PGOLF_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) == MPI_SUCCESS,
              "MPI_Init failed: cannot join the job mpirun started");
  Comm& c = world();
  auto* s = new Comm::State;
  MPI_Comm_dup(MPI_COMM_WORLD, &s->comm);
  MPI_Comm_set_errhandler(s->comm, MPI_ERRORS_RETURN);  // errors become pgolf::Error
  MPI_Comm_rank(s->comm, &c.rank_);
  MPI_Comm_size(s->comm, &c.size_);
  MPI_Comm local;
  MPI_Comm_split_type(s->comm, MPI_COMM_TYPE_SHARED, c.rank_, MPI_INFO_NULL, &local);
  MPI_Comm_rank(local, &c.local_rank_);
  MPI_Comm_free(&local);
  c.state_ = s;
  g_rank = c.rank_;
  g_size = c.size_;
  if (c.size_ > 1) {
    s->limit_s = wait_limit_seconds();
    std::signal(SIGTERM, on_sigterm);
    s->watchdog = std::thread([s] { s->watch(); });
  }
}

Session::~Session() {
  Comm& c = world();
  if (!c.state_) return;
  c.state_->stop = true;
  if (c.state_->watchdog.joinable()) c.state_->watchdog.join();
  MPI_Comm_free(&c.state_->comm);
  delete c.state_;
  c.state_ = nullptr;
  c.rank_ = 0;
  c.size_ = 1;
  MPI_Finalize();
}

void abort_job(const std::string& message, int exit_code) {
  const Comm& c = world();
  // Most errors (a bad config, a missing file) strike every rank alike: rank 0 speaks first
  // and its MPI_Abort usually ends the others before they repeat the sentence.
  if (!c.root()) std::this_thread::sleep_for(std::chrono::seconds(1));
  std::fprintf(stderr, "pgolf: rank %d of %d: %s\n", c.rank(), c.size(), message.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
}

#else  // no MPI: a world of one

struct Comm::State {};
struct Request::Impl {};
Request::Request() = default;
Request::Request(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Request::Request(Request&&) noexcept = default;
Request& Request::operator=(Request&&) noexcept = default;
Request::~Request() = default;
void Request::wait() {}

template <typename T>
void Comm::all_reduce_sum(std::span<T>) const {}
void Comm::all_reduce_max(std::span<double>) const {}
template <typename T>
void Comm::broadcast(std::span<T>, int) const {}
void Comm::broadcast(std::string&, int) const {}
template <typename T>
Request Comm::reduce_scatter_sum(std::span<const T> send, std::span<T> recv,
                                 std::span<const int64_t>) const {
  std::copy(send.begin(), send.begin() + int64_t(recv.size()), recv.begin());
  return Request();
}
template <typename T>
Request Comm::all_gather(std::span<const T> mine, std::span<T> all, std::span<const int64_t>) const {
  std::copy(mine.begin(), mine.end(), all.begin());
  return Request();
}
void Comm::barrier() const {}
double Comm::waited_ms() const { return 0.0; }
Comm::Waitless::Waitless(const Comm& c) : c_(c) {}
Comm::Waitless::~Waitless() = default;
Comm::Watch::Watch(const Comm& c, const char*) : s_(nullptr), t0_us_(0) {}
Comm::Watch::~Watch() = default;

Session::Session() {
  PGOLF_CHECK(!launched_by_mpi(), "this pgolf was built without MPI, so it cannot run as a "
              "rank of an MPI job; install libopenmpi-dev and rebuild");
}
Session::~Session() = default;

void abort_job(const std::string& message, int exit_code) {
  std::fprintf(stderr, "pgolf: %s\n", message.c_str());
  std::_Exit(exit_code);
}

#endif

void Comm::check_identical(std::span<const float> x, const char* what) const {
  if (!distributed()) return;
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the bytes
  const auto* bytes = reinterpret_cast<const unsigned char*>(x.data());
  for (size_t i = 0; i < x.size_bytes(); ++i) h = (h ^ bytes[i]) * 1099511628211ull;
  const int64_t mine = int64_t(h);
  std::vector<int64_t> all(static_cast<size_t>(size_)), ones(static_cast<size_t>(size_), 1);
  all_gather<int64_t>({&mine, 1}, all, ones).wait();
  for (int r = 1; r < size_; ++r)
    PGOLF_CHECK(all[size_t(r)] == all[0], "the ranks' ", what, " differ (rank ", r,
                " is not rank 0's): the data-parallel replicas drifted apart");
}

#define PGOLF_COMM_INSTANTIATE(T)                                                           \
  template void Comm::all_reduce_sum<T>(std::span<T>) const;                                      \
  template void Comm::broadcast<T>(std::span<T>, int) const;                                      \
  template Request Comm::reduce_scatter_sum<T>(std::span<const T>, std::span<T>,            \
                                               std::span<const int64_t>) const;                   \
  template Request Comm::all_gather<T>(std::span<const T>, std::span<T>,                    \
                                       std::span<const int64_t>) const;
PGOLF_COMM_INSTANTIATE(float)
PGOLF_COMM_INSTANTIATE(double)
PGOLF_COMM_INSTANTIATE(int64_t)
PGOLF_COMM_INSTANTIATE(char)
#undef PGOLF_COMM_INSTANTIATE

}  // namespace pgolf::dist
