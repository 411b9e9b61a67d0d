// The native side of bench (g): portSMF (Debian's libportsmf, the C++ Standard MIDI File library of Audacity)
// parses the same MIDI files as analyzeMidi, from memory, on one core. Every file is read into memory first; then
// whole passes (Alg_seq from a stream over the bytes: parse, pair notes, build the tempo map; then a walk over every
// event of every track, counting notes) run until MIN_SECONDS have passed. One JSON line at the end: files, bytes,
// passes, seconds, events and notes per pass, files it refused per pass.
//
// Usage: portsmf-parse MIN_SECONDS < paths (one per line)
//
// libsmf (Debian's other C MIDI library) was tried first: it is quadratic in events per track (a 40 000-event file
// took 9.4 s), so it measures its own defect, not native speed.
// allegro.h uses memcpy without including <cstring>.
#include <cstring>

#include <allegro.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <streambuf>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

// A read-only streambuf over bytes already in memory, so a pass costs no copy of the file.
struct MemoryBuffer : std::streambuf {
  MemoryBuffer(const std::string &bytes) {
    char *begin = const_cast<char *>(bytes.data());
    setg(begin, begin, begin + bytes.size());
  }
  pos_type seekoff(off_type off, std::ios_base::seekdir dir, std::ios_base::openmode) override {
    char *target = dir == std::ios_base::beg ? eback() + off : dir == std::ios_base::cur ? gptr() + off : egptr() + off;
    if (target < eback() || target > egptr()) return pos_type(off_type(-1));
    setg(eback(), target, egptr());
    return pos_type(target - eback());
  }
  pos_type seekpos(pos_type pos, std::ios_base::openmode mode) override {
    return seekoff(off_type(pos), std::ios_base::beg, mode);
  }
};

struct Pass {
  long events = 0, notes = 0, failures = 0;
};

Pass pass(const std::vector<std::string> &files) {
  Pass p;
  for (const auto &bytes : files) {
    MemoryBuffer buffer(bytes);
    std::istream in(&buffer);
    Alg_seq seq(in, true);
    if (seq.get_read_error() != alg_no_error) {
      p.failures++;
      continue;
    }
    for (int t = 0; t < seq.tracks(); t++) {
      Alg_track_ptr track = seq.track(t);
      for (long i = 0; i < track->length(); i++) {
        p.events++;
        if ((*track)[i]->is_note()) p.notes++;
      }
    }
  }
  return p;
}

}  // namespace

int main(int argc, char **argv) {
  const double minSeconds = argc > 1 ? std::atof(argv[1]) : 3.0;
  std::vector<std::string> files;
  size_t bytes = 0;
  for (std::string path; std::getline(std::cin, path);) {
    if (path.empty()) continue;
    std::ifstream f(path, std::ios::binary);
    if (!f) {
      std::perror(path.c_str());
      return 1;
    }
    files.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    bytes += files.back().size();
  }
  // portSMF prints its warnings about odd files on stdout: keep stdout for the result line only.
  const int out = dup(STDOUT_FILENO);
  if (!std::freopen("/dev/null", "w", stdout)) return 1;
  Pass last = pass(files);  // warm-up, as the JavaScript side has
  long passes = 0;
  double seconds = 0;
  while (seconds < minSeconds) {
    const auto start = std::chrono::steady_clock::now();
    last = pass(files);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    passes++;
  }
  FILE *result = fdopen(out, "w");
  std::fprintf(result,
               "{\"files\":%zu,\"bytes\":%zu,\"passes\":%ld,\"seconds\":%.6f,\"events\":%ld,\"notes\":%ld,"
               "\"failures\":%ld}\n",
               files.size(), bytes, passes, seconds, last.events, last.notes, last.failures);
  std::fclose(result);
  return 0;
}
