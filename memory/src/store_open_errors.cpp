// What store::open says when it cannot open: no store at the path, or a store another process holds.
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include "memory/src/store_internal.h"

namespace mnemos::memory::detail {

status refuse_missing_store(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::exists(std::filesystem::path(path) / "CURRENT", ec)) return ok_status();
    const bool empty_dir = std::filesystem::is_directory(path, ec) && std::filesystem::is_empty(path, ec);
    if (std::filesystem::exists(path, ec) && !empty_dir) return ok_status();  // preflight names what is wrong
    return make_error(errc::not_found, "no store at " + path);
}

status store_in_use(const std::string& path) {
    std::string who = "another process";
    const int fd = ::open((std::filesystem::path(path) / "LOCK").c_str(), O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        struct flock fl {};
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        // RocksDB holds a POSIX record lock on LOCK: F_GETLK names the process that holds it (and reports
        // none when it is this process, which RocksDB refuses on its own).
        if (::fcntl(fd, F_GETLK, &fl) == 0) {
            if (fl.l_type == F_UNLCK)
                who = "this process (it is already open here)";
            else if (fl.l_pid > 0)
                who = "another process (pid " + std::to_string(fl.l_pid) + ")";
        }
        ::close(fd);
    }
    return make_error(errc::busy, "store " + path + " is in use by " + who + "; stop it or use another --store");
}

}  // namespace mnemos::memory::detail
