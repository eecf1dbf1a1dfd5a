#pragma once
/// sendqctl's subcommands. Each reads its own options from argv[first...], prints its summary,
/// and returns the process exit code. Usage errors throw usage_error.
namespace sendq::ctl {

int run_enqueue(int argc, char** argv, int first);
int run_replay(int argc, char** argv, int first);
int run_redrive(int argc, char** argv, int first);
int run_tail(int argc, char** argv, int first);
int run_stats(int argc, char** argv, int first);

}  // namespace sendq::ctl
