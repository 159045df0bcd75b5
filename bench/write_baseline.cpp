// bench/write_baseline.cpp - the baseline of the `run` row: copy a local stream's shard files into
// an output directory with one write and one fdatasync per 1,000 lines, shard after shard.
// Usage: write_baseline STREAM_DIR OUT_DIR; prints the seconds it took, or exits 1 (no figure)
// when a file cannot be opened or a write or sync fails.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <fcntl.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: write_baseline STREAM_DIR OUT_DIR\n");
    return 2;
  }
  namespace fs = std::filesystem;
  fs::create_directories(argv[2]);
  const auto start = std::chrono::steady_clock::now();
  for (auto& entry : fs::directory_iterator(argv[1])) {
    if (entry.path().extension() != ".ndjson")
      continue;
    std::ifstream in{entry.path()};
    auto out_path = fs::path{argv[2]} / entry.path().filename();
    int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
      std::perror(out_path.c_str());
      return 1;
    }
    std::string chunk;
    std::string line;
    int lines = 0;
    bool ok = true;
    auto write_chunk = [&] {
      if (chunk.empty())
        return;
      if (::write(fd, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())
          || ::fdatasync(fd) != 0)
        ok = false;
      chunk.clear();
    };
    while (ok && std::getline(in, line)) {
      chunk += line;
      chunk += '\n';
      if (++lines % 1000 == 0)
        write_chunk();
    }
    write_chunk();
    ::close(fd);
    if (!ok) { // a baseline that did not write everything has no figure
      std::perror(out_path.c_str());
      return 1;
    }
  }
  std::printf("%.3f\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}
