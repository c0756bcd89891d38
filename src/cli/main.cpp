// pgolf: train, compress and evaluate parameter-golf language models (SPEC §6).
// Every error reaches the user as one sentence on stderr and a non-zero exit; under mpirun
// (docs/distributed.md) a rank's error ends every rank of the job.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "dist/comm.h"

namespace {

// The commands that split their work across ranks; the others would only repeat it (and
// write the same files at once), so a launch with several ranks refuses them.
bool runs_data_parallel(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (argv[i][0] != '-')
      return std::strcmp(argv[i], "train") == 0 || std::strcmp(argv[i], "eval") == 0;
  return true;  // --help and the like
}

// An error in a job of several ranks ends all of them: a rank that stopped alone would leave
// the others waiting in their next collective.
int report(const std::string& message, int code) {
  if (pgolf::dist::world().distributed()) pgolf::dist::abort_job(message, code);
  std::fprintf(stderr, "pgolf: %s\n", message.c_str());
  return code;
}

int run(int argc, char** argv) {
  CLI::App app{"pgolf: train, compress and evaluate parameter-golf language models"};
  app.require_subcommand(1);
  // Usage errors too are one sentence: "pgolf: --out is required (see pgolf CMD --help)".
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("pgolf: ") + e.what() + " (see --help)\n";
  });
  pgolf::add_init_command(app);
  pgolf::add_score_commands(app);
  pgolf::add_train_command(app);
  pgolf::add_data_command(app);
  pgolf::add_pack_command(app);
  pgolf::add_inspect_command(app);
  pgolf::add_submit_command(app);
  pgolf::add_calibrate_command(app);
  pgolf::add_influence_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const pgolf::Error& e) {
    return report(e.what(), 1);
  } catch (const std::bad_alloc&) {
    return report("out of memory", 1);
  } catch (const std::exception& e) {
    return report(std::string("internal error: ") + e.what(), 2);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    pgolf::dist::Session session;
    const auto& world = pgolf::dist::world();
    if (world.distributed() && !runs_data_parallel(argc, argv)) {
      if (world.root())
        std::fprintf(stderr, "pgolf: only train and eval run as several ranks; start this "
                             "command without mpirun\n");
      return 2;
    }
    return run(argc, argv);
  } catch (const pgolf::Error& e) {  // from joining or leaving the MPI job
    std::fprintf(stderr, "pgolf: %s\n", e.what());
    return 1;
  }
}
