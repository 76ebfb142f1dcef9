// File access for config loading, with the OS's reason in every error.
#include "files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace pgweir::config::detail {
namespace {

Error os_error(const std::string& path, int error_number) {
  return make_error("cannot read `" + path + "`: " + std::strerror(error_number));
}

// Owns a file descriptor for the length of one read.
class FileHandle {
 public:
  explicit FileHandle(int fd) : fd_(fd) {}
  FileHandle(const FileHandle&) = delete;
  FileHandle& operator=(const FileHandle&) = delete;
  ~FileHandle() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// Opens `path` and checks that it is a regular file: opening a directory for reading succeeds on Linux, and
// O_NONBLOCK keeps a FIFO from hanging the load before it is rejected.
Expected<int> open_regular_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return os_error(path, errno);
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    const int saved = errno;
    ::close(fd);
    return os_error(path, saved);
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    return make_error("cannot read `" + path + "`: not a regular file");
  }
  return fd;
}

}  // namespace

Expected<std::string> read_text_file(const std::string& path) {
  auto fd = open_regular_file(path);
  if (!fd) return fd.error();
  FileHandle file(*fd);
  std::string contents;
  char buffer[8192];
  while (true) {
    const ssize_t n = ::read(file.get(), buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      return os_error(path, errno);
    }
    if (n == 0) return contents;
    contents.append(buffer, static_cast<std::size_t>(n));
  }
}

Expected<std::string> read_secret_file(const std::string& path) {
  auto contents = read_text_file(path);
  if (!contents) return contents;
  std::string& secret = *contents;
  if (secret.ends_with("\r\n")) {
    secret.resize(secret.size() - 2);
  } else if (secret.ends_with('\n')) {
    secret.pop_back();
  }
  return contents;
}

Expected<void> check_readable_file(const std::string& path) {
  auto fd = open_regular_file(path);
  if (!fd) return fd.error();
  FileHandle file(*fd);
  return {};
}

std::string resolve_path(std::string_view config_dir, std::string_view path) {
  if (path.empty() || config_dir.empty() || path.front() == '/') return std::string(path);
  return (std::filesystem::path(config_dir) / std::filesystem::path(path)).lexically_normal().string();
}

}  // namespace pgweir::config::detail
