// Sound files through libsndfile: where a render's output goes (a regular file written
// atomically, a device, a FIFO or standard output), the WAV/RF64 choice, checked writes, and
// the removal of partial files when a signal ends the command.
#include "spinout/sound_file.hpp"

#include <sndfile.h>

#include <fmt/format.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <iterator>
#include <limits>
#include <map>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace spinout {

namespace {

const std::map<std::string, int> kContainers = {{"wav", SF_FORMAT_WAV},
                                                {"rf64", SF_FORMAT_RF64},
                                                {"flac", SF_FORMAT_FLAC},
                                                {"ogg", SF_FORMAT_OGG},
                                                {"aiff", SF_FORMAT_AIFF}};
const std::map<std::string, int> kEncodings = {{"pcm16", SF_FORMAT_PCM_16},
                                               {"pcm24", SF_FORMAT_PCM_24},
                                               {"pcm32", SF_FORMAT_PCM_32},
                                               {"float32", SF_FORMAT_FLOAT},
                                               {"float64", SF_FORMAT_DOUBLE}};

int formatCode(const SoundFormat& f) {
    auto c = kContainers.find(f.container);
    if (c == kContainers.end())
        throw SoundFileError(
            fmt::format("unknown format '{}' (wav, rf64, flac, ogg, aiff)", f.container));
    if (f.container == "ogg") return c->second | SF_FORMAT_VORBIS;
    auto e = kEncodings.find(f.encoding);
    if (e == kEncodings.end())
        throw SoundFileError(fmt::format(
            "unknown encoding '{}' (pcm16, pcm24, pcm32, float32, float64)", f.encoding));
    return c->second | e->second;
}

int bytesPerSample(const std::string& encoding) {
    if (encoding == "pcm16") return 2;
    if (encoding == "pcm24") return 3;
    if (encoding == "float64") return 8;
    return 4;
}

// RIFF and AIFF sizes are 32-bit and count the whole file but 8 bytes; the header that
// libsndfile writes is well under this.
constexpr std::int64_t kHeaderRoom = 4096;
constexpr std::int64_t kMax32 = 0xFFFFFFFFLL;

std::string errnoText(int err) {
    return std::strerror(err);
}

std::string folderOf(const std::string& path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

// A stale TARGET.partial is one a killed render left: a regular file that no live writer
// holds locked. Anything else in its place is not ours to remove.
void removeStalePartial(const OutputTarget& t) {
    const int fd = open(t.partial.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return;
        throw SoundFileError(fmt::format(
            "cannot write '{}': '{}' is in the way ({}); it is not a partial render of spinout's: "
            "remove it",
            t.path, t.partial, errno == ELOOP ? "a symbolic link" : errnoText(errno)));
    }
    struct stat st {};
    const bool regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    if (!regular) {
        close(fd);
        throw SoundFileError(
            fmt::format("cannot write '{}': '{}' is in the way and is not a partial render of "
                        "spinout's: remove it",
                        t.path, t.partial));
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        throw SoundFileError(fmt::format(
            "cannot write '{}': another render is writing it (it holds '{}')", t.path, t.partial));
    }
    // Still the same file under that name (not one a writer just made)? Then it is stale.
    struct stat now {};
    if (lstat(t.partial.c_str(), &now) == 0 && now.st_ino == st.st_ino && now.st_dev == st.st_dev &&
        unlink(t.partial.c_str()) != 0) {
        const int err = errno;
        close(fd);
        throw SoundFileError(fmt::format("cannot write '{}': cannot remove the stale '{}': {}",
                                         t.path, t.partial, errnoText(err)));
    }
    close(fd);
}

// The partial files of open writers, for the signal handler: fixed storage, so that the
// handler reads no memory a writer might free meanwhile.
struct PartialSlot {
    std::atomic<bool> used{false};
    std::atomic<bool> armed{false};
    char path[4096] = {};
};
PartialSlot gPartials[16];

int armPartial(const std::string& path) {
    if (path.size() >= sizeof gPartials[0].path) return -1;
    for (int i = 0; i < static_cast<int>(std::size(gPartials)); ++i) {
        auto& s = gPartials[i];
        if (s.used.exchange(true)) continue;
        std::memcpy(s.path, path.c_str(), path.size() + 1);
        s.armed.store(true);
        return i;
    }
    return -1; // more writers than slots: those are not removed on a signal
}

void disarmPartial(int slot) {
    if (slot < 0) return;
    gPartials[slot].armed.store(false);
    gPartials[slot].used.store(false);
}

extern "C" void removePartialsAndDie(int sig) {
    // async-signal-safe only: atomic loads, unlink, raise
    removePartialFiles();
    raise(sig); // the handler was reset to the default on entry
}

// Puts `from` in the place of `to` atomically. Over an existing file, the names are
// exchanged and the old file removed: a plain rename over it makes ext4 (auto_da_alloc)
// flush the new file's data first, milliseconds a render need not wait.
bool replaceFile(const std::string& from, const std::string& to) {
#if defined(RENAME_EXCHANGE)
    if (renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_EXCHANGE) == 0) {
        std::remove(from.c_str()); // the old render, now under the partial name
        return true;
    }
#endif
    return std::rename(from.c_str(), to.c_str()) == 0;
}

std::uint32_t get32(const std::vector<unsigned char>& h, std::size_t at) {
    return static_cast<std::uint32_t>(h[at]) | static_cast<std::uint32_t>(h[at + 1]) << 8 |
           static_cast<std::uint32_t>(h[at + 2]) << 16 |
           static_cast<std::uint32_t>(h[at + 3]) << 24;
}

void put32(std::vector<unsigned char>& h, std::size_t at, std::uint64_t v) {
    for (int i = 0; i < 4; ++i)
        h[at + static_cast<std::size_t>(i)] = static_cast<unsigned char>(v >> (8 * i));
}

void put64(std::vector<unsigned char>& h, std::size_t at, std::uint64_t v) {
    for (int i = 0; i < 8; ++i)
        h[at + static_cast<std::size_t>(i)] = static_cast<unsigned char>(v >> (8 * i));
}

bool isId(const std::vector<unsigned char>& h, std::size_t at, const char* id) {
    return at + 4 <= h.size() && std::memcmp(h.data() + at, id, 4) == 0;
}

// Whether a WAV or RF64 header holds a chunk `id` before its data.
bool hasChunk(const std::vector<unsigned char>& h, const char* id) {
    for (std::size_t at = 12; at + 8 <= h.size();) {
        if (isId(h, at, id)) return true;
        if (isId(h, at, "data")) return false;
        const std::uint32_t size = get32(h, at + 4);
        at += 8 + size + (size & 1);
    }
    return false;
}

// Writes the final sizes into a WAV or RF64 header that libsndfile wrote for an empty file,
// before any of it is sent: a stream cannot seek back to fix them at the end. frames < 0:
// the sizes that mean "unknown length" (0xFFFFFFFF), which readers take as "to the end".
void patchWavHeader(std::vector<unsigned char>& h, std::int64_t frames, int bytesPerFrame) {
    const bool rf64 = isId(h, 0, "RF64");
    if (!(rf64 || isId(h, 0, "RIFF")) || !isId(h, 8, "WAVE"))
        throw SoundFileError("internal error: not a WAV header");
    const bool known = frames >= 0;
    const auto data = known ? static_cast<std::uint64_t>(frames) * bytesPerFrame : 0;
    const auto fileSize = h.size() + data + (data & 1);
    bool sawData = false;
    for (std::size_t at = 12; at + 8 <= h.size();) {
        const std::uint32_t size = get32(h, at + 4);
        if (isId(h, at, "ds64") && at + 32 <= h.size() && known) {
            put64(h, at + 8, fileSize - 8);
            put64(h, at + 16, data);
            put64(h, at + 24, static_cast<std::uint64_t>(frames));
        } else if (isId(h, at, "fact") && at + 12 <= h.size()) {
            put32(h, at + 8, known ? std::min<std::uint64_t>(frames, kMax32) : kMax32);
        } else if (isId(h, at, "data")) {
            if (at + 8 != h.size()) throw SoundFileError("internal error: data chunk not last");
            if (!rf64) put32(h, at + 4, known ? data : kMax32);
            sawData = true;
            break;
        }
        at += 8 + size + (size & 1);
    }
    if (!sawData) throw SoundFileError("internal error: no data chunk in the WAV header");
    if (!rf64) put32(h, 4, known ? fileSize - 8 : kMax32);
}

// libsndfile's file I/O goes through here, so that every failed write is seen (libsndfile
// forgets errors of the header it writes on closing) and so that a pipe can be written.
// Seekable: writes land where libsndfile seeks. Stream: bytes go out in order; a rewrite of
// what was already sent (the header, on closing) is dropped, which is why a stream's header
// is held back until its sizes are written in (patchWavHeader).
struct Sink {
    int fd = -1;
    bool seekable = true;
    bool hold = false;                // stream: keep what is written in `held`, send nothing
    std::vector<unsigned char> held;  // stream: the header, until release()
    std::vector<unsigned char> queue; // stream: written, not yet sent
    std::int64_t pos = 0, length = 0, sent = 0;
    int error = 0; // errno of the first failed write

    bool sendQueue() {
        std::size_t done = 0;
        while (error == 0 && done < queue.size()) {
            const auto n = ::write(fd, queue.data() + done, queue.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0)
                error = n < 0 ? errno : EIO;
            else
                done += static_cast<std::size_t>(n);
        }
        queue.clear();
        return error == 0;
    }

    sf_count_t write(const unsigned char* p, sf_count_t n) {
        if (error != 0) return 0;
        const sf_count_t all = n;
        if (seekable) {
            for (sf_count_t done = 0; done < n;) {
                const auto w = pwrite(fd, p + done, static_cast<std::size_t>(n - done), pos + done);
                if (w < 0 && errno == EINTR) continue;
                if (w <= 0) {
                    error = w < 0 ? errno : EIO;
                    return 0;
                }
                done += w;
            }
        } else if (hold) {
            if (static_cast<std::size_t>(pos + n) > held.size())
                held.resize(static_cast<std::size_t>(pos + n));
            std::memcpy(held.data() + pos, p, static_cast<std::size_t>(n));
        } else {
            if (pos < sent) { // already sent: a header update there is no way to make
                const auto skip = std::min(n, sent - pos);
                p += skip;
                n -= skip;
                pos += skip;
            }
            if (n > 0) {
                if (pos != sent) { // a hole in a stream: libsndfile's writers make none
                    error = ESPIPE;
                    return 0;
                }
                queue.insert(queue.end(), p, p + n);
                sent += n;
                if (queue.size() >= (1u << 16) && !sendQueue()) return 0;
            }
        }
        pos += n;
        length = std::max(length, pos);
        return all;
    }

    // Stream: send the held header and stream from here on.
    void release() {
        queue = std::move(held);
        sent = static_cast<std::int64_t>(queue.size());
        hold = false;
    }
};

sf_count_t sinkLength(void* s) {
    return static_cast<Sink*>(s)->length;
}
sf_count_t sinkSeek(sf_count_t offset, int whence, void* s) {
    auto* k = static_cast<Sink*>(s);
    const sf_count_t base = whence == SEEK_CUR ? k->pos : (whence == SEEK_END ? k->length : 0);
    if (base + offset < 0) return -1;
    k->pos = base + offset;
    return k->pos;
}
sf_count_t sinkRead(void*, sf_count_t, void*) {
    return 0; // libsndfile reads nothing back when it writes
}
sf_count_t sinkWrite(const void* p, sf_count_t n, void* s) {
    return static_cast<Sink*>(s)->write(static_cast<const unsigned char*>(p), n);
}
sf_count_t sinkTell(void* s) {
    return static_cast<Sink*>(s)->pos;
}

} // namespace

OutputTarget resolveOutput(const std::string& path) {
    OutputTarget t;
    t.path = path;
    if (path == "-") {
        t.kind = OutputTarget::standardOutput;
        t.target = path;
        return t;
    }
    auto fail = [&](const std::string& why) {
        throw SoundFileError(fmt::format("cannot write '{}': {}", path, why));
    };
    if (path.empty()) throw SoundFileError("no output file given");
    if (path.back() == '/') fail("the name ends with '/', which names a folder");
    std::string target = path;
    for (int links = 0;; ++links) {
        struct stat st {};
        if (lstat(target.c_str(), &st) != 0) {
            if (errno == ENOENT) break; // a new file; its folder is checked below
            if (errno == ENOTDIR) fail(fmt::format("'{}' is not a folder", folderOf(target)));
            fail(errnoText(errno));
        }
        if (S_ISLNK(st.st_mode)) {
            if (links == 40) fail("too many levels of symbolic links");
            std::vector<char> buf(static_cast<std::size_t>(st.st_size > 0 ? st.st_size : 255) + 1);
            const auto n = readlink(target.c_str(), buf.data(), buf.size());
            if (n < 0) fail(errnoText(errno));
            std::string link(buf.data(), static_cast<std::size_t>(n));
            const auto folder = folderOf(target);
            target = link.front() == '/' || folder == "." ? link : folder + "/" + link;
            continue;
        }
        if (S_ISDIR(st.st_mode))
            fail(target == path ? "it is a folder; give a file name in it"
                                : fmt::format("it leads to the folder '{}'", target));
        if (S_ISBLK(st.st_mode))
            fail("it is a block device; spinout writes files, FIFOs and character devices");
        if (S_ISSOCK(st.st_mode)) fail("it is a socket");
        if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
            t.kind = OutputTarget::stream;
            t.target = target;
            return t;
        }
        break; // a regular file: replaced atomically
    }
    const auto folder = folderOf(target);
    struct stat st {};
    if (stat(folder.c_str(), &st) != 0)
        fail(errno == ENOENT ? fmt::format("the folder '{}' does not exist", folder)
                             : fmt::format("'{}': {}", folder, errnoText(errno)));
    if (!S_ISDIR(st.st_mode)) fail(fmt::format("'{}' is not a folder", folder));
    if (access(folder.c_str(), W_OK) != 0)
        fail(fmt::format("cannot create files in '{}': {}", folder, errnoText(errno)));
    t.target = target;
    t.partial = target + ".partial";
    removeStalePartial(t);
    return t;
}

std::string containerFor(const SoundFormat& format, int nchnls, std::int64_t frames) {
    if (format.container != "wav" || frames < 0) return format.container;
    const std::int64_t bytes = frames * nchnls * bytesPerSample(format.encoding);
    return bytes > kMax32 - kHeaderRoom ? "rf64" : "wav";
}

void removePartialFiles() noexcept {
    for (auto& s : gPartials)
        if (s.armed.load()) unlink(s.path);
}

void removePartialFilesOnSignals() {
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
        struct sigaction old {};
        if (sigaction(sig, nullptr, &old) != 0 || old.sa_handler == SIG_IGN) continue;
        struct sigaction sa {};
        sa.sa_handler = removePartialsAndDie;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESETHAND;
        sigaction(sig, &sa, nullptr);
    }
}

struct SoundFileWriter::Impl {
    OutputTarget target;
    std::string container;
    SNDFILE* file = nullptr;
    Sink sink;
    int slot = -1;           // the signal handler's record of the partial file
    std::int64_t fixed = -1; // stream: the length its header announces
    std::int64_t limit = -1; // wav, aiff: the frames their 32-bit sizes hold
    bool ownsFd = false;

    [[noreturn]] void fail(const std::string& why) const {
        throw SoundFileError(fmt::format("cannot write '{}': {}", target.path, why));
    }
    // More than a header announced for a stream, or past the 4 GB of a WAV or AIFF: refused
    // rather than written with sizes that wrap.
    void checkLimit(std::int64_t frames) const {
        if (limit >= 0 && frames > limit)
            fail(fmt::format("a {} holds at most 4 GB; write wav (RF64 beyond 4 GB) or flac",
                             container));
        if (fixed >= 0 && frames > fixed)
            fail(fmt::format("internal error: more than the {} frames announced", fixed));
    }
    std::string writeError() const {
        if (sink.error != 0) return errnoText(sink.error);
        return file != nullptr ? sf_strerror(file) : "unknown error";
    }
    void discard() {
        if (file != nullptr) sf_close(file);
        file = nullptr;
        if (!target.partial.empty() && sink.fd >= 0) unlink(target.partial.c_str());
        disarmPartial(slot);
        slot = -1;
        if (ownsFd && sink.fd >= 0) close(sink.fd);
        sink.fd = -1;
    }

    // A new TARGET.partial, created here (never an existing file or a link followed) and
    // locked while this writer lives, which tells other runs it is not stale.
    int createPartial() {
        for (int attempt = 0; attempt < 5; ++attempt) {
            const int fd =
                open(target.partial.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
            if (fd < 0) {
                if (errno != EEXIST) fail(errnoText(errno));
                removeStalePartial(target); // throws when another render holds it
                continue;
            }
            flock(fd, LOCK_EX); // waits only while another run checks whether it is stale
            struct stat mine {
            }, named{};
            if (fstat(fd, &mine) == 0 && lstat(target.partial.c_str(), &named) == 0 &&
                mine.st_ino == named.st_ino && mine.st_dev == named.st_dev)
                return fd;
            close(fd); // removed as stale before we locked it: make another
        }
        fail(fmt::format("cannot create '{}'", target.partial));
    }
};

SoundFileWriter::SoundFileWriter(const std::string& path, int sr, int nchnls,
                                 const SoundFormat& format, std::int64_t expectedFrames)
    : impl_(std::make_unique<Impl>()) {
    auto& m = *impl_;
    m.target = resolveOutput(path);
    SoundFormat f = format;
    f.container = containerFor(format, nchnls, expectedFrames);
    const bool wavLike = f.container == "wav" || f.container == "rf64";
    const bool toFile = m.target.kind == OutputTarget::file;
    // A file of unknown length: RF64, which libsndfile turns into a plain WAV on closing when
    // it stayed under 4 GB.
    const bool autoRf64 = toFile && f.container == "wav" && expectedFrames < 0;
    if (autoRf64) f.container = "rf64";
    m.container = f.container;
    if (f.container == "aiff" && expectedFrames >= 0 &&
        expectedFrames * nchnls * bytesPerSample(f.encoding) > kMax32 - kHeaderRoom)
        m.fail("aiff holds at most 4 GB; write wav (RF64 beyond 4 GB) or flac");
    if (f.container == "wav" || f.container == "aiff")
        m.limit = (kMax32 - kHeaderRoom) / (nchnls * bytesPerSample(f.encoding));
    if (!toFile && f.container == "aiff")
        m.fail("aiff cannot be streamed (its header holds sizes); use wav or flac");

    SF_INFO info{};
    info.samplerate = sr;
    info.channels = nchnls;
    info.format = formatCode(f);
    if (!sf_format_check(&info))
        throw SoundFileError(fmt::format("{} cannot hold {} at {} Hz with {} channels",
                                         format.container, format.encoding, sr, nchnls));

    if (toFile) {
        m.sink.fd = m.createPartial();
        m.ownsFd = true;
        m.slot = armPartial(m.target.partial);
    } else if (m.target.kind == OutputTarget::standardOutput) {
        if (isatty(STDOUT_FILENO)) m.fail("standard output is a terminal; redirect it");
        m.sink.fd = STDOUT_FILENO;
        m.sink.seekable = false;
    } else {
        m.sink.fd = open(m.target.target.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC);
        if (m.sink.fd < 0) m.fail(errnoText(errno));
        m.ownsFd = true;
        m.sink.seekable = false;
    }
    m.sink.hold = !m.sink.seekable && wavLike;

    SF_VIRTUAL_IO io{sinkLength, sinkSeek, sinkRead, sinkWrite, sinkTell};
    m.file = sf_open_virtual(&io, SFM_WRITE, &info, &m.sink);
    if (m.file == nullptr) {
        const std::string why = m.sink.error != 0 ? errnoText(m.sink.error) : sf_strerror(nullptr);
        m.discard();
        m.fail(why);
    }
    if (autoRf64) sf_command(m.file, SFC_RF64_AUTO_DOWNGRADE, nullptr, SF_TRUE);
    const bool floats = f.encoding == "float32" || f.encoding == "float64";
    if (!m.sink.hold && floats && (f.container == "wav" || f.container == "aiff"))
        // The PEAK chunk holds the time of writing: without it, the same render is the same
        // file byte for byte (batches and their shards are compared with cmp).
        sf_command(m.file, SFC_SET_ADD_PEAK_CHUNK, nullptr, SF_FALSE);
    if (m.sink.hold) {
        // A PEAK chunk would carry the peaks as of now (none): leave it out of a stream.
        // (Only when there is one: libsndfile 1.2 adds one when asked to remove none.)
        if (hasChunk(m.sink.held, "PEAK"))
            sf_command(m.file, SFC_SET_ADD_PEAK_CHUNK, nullptr, SF_FALSE);
        if (m.sink.pos != static_cast<std::int64_t>(m.sink.held.size())) {
            m.discard();
            m.fail("internal error: the header is not where the data starts");
        }
        try {
            patchWavHeader(m.sink.held, expectedFrames, nchnls * bytesPerSample(f.encoding));
        } catch (const SoundFileError&) {
            m.discard();
            throw;
        }
        m.fixed = expectedFrames;
        m.sink.release();
    }
    // Clip rather than wrap when a float signal exceeds 0 dBFS in an integer file.
    sf_command(m.file, SFC_SET_CLIPPING, nullptr, SF_TRUE);
}

SoundFileWriter::~SoundFileWriter() {
    impl_->discard();
}

const OutputTarget& SoundFileWriter::target() const {
    return impl_->target;
}

const std::string& SoundFileWriter::container() const {
    return impl_->container;
}

void SoundFileWriter::write(const double* interleaved, std::int64_t frames) {
    if (impl_->file == nullptr) throw SoundFileError("the sound file is closed");
    impl_->checkLimit(frames_ + frames);
    if (sf_writef_double(impl_->file, interleaved, frames) != frames)
        impl_->fail(impl_->writeError());
    frames_ += frames;
}

void SoundFileWriter::write(const float* interleaved, std::int64_t frames) {
    if (impl_->file == nullptr) throw SoundFileError("the sound file is closed");
    impl_->checkLimit(frames_ + frames);
    if (sf_writef_float(impl_->file, interleaved, frames) != frames)
        impl_->fail(impl_->writeError());
    frames_ += frames;
}

void SoundFileWriter::commit() {
    auto& m = *impl_;
    if (m.file == nullptr) return;
    // libsndfile writes the last of the data (FLAC, Vorbis) and the header on closing
    int err = sf_close(m.file);
    m.file = nullptr;
    if (err == 0 && m.sink.error == 0 && !m.sink.seekable) m.sink.sendQueue();
    std::string why;
    if (m.sink.error != 0)
        why = errnoText(m.sink.error);
    else if (err != 0)
        why = sf_error_number(err);
    else if (m.fixed >= 0 && frames_ != m.fixed)
        why = fmt::format("internal error: {} frames written where the header says {}", frames_,
                          m.fixed);
    if (why.empty() && m.target.kind == OutputTarget::file &&
        !replaceFile(m.target.partial, m.target.target))
        why = errnoText(errno);
    if (!why.empty()) {
        m.discard();
        m.fail(why);
    }
    disarmPartial(m.slot);
    m.slot = -1;
    const int fd = m.sink.fd;
    m.sink.fd = -1;
    // close() is where some file systems (NFS) report a failed write
    if (m.ownsFd && close(fd) != 0) m.fail(errnoText(errno));
}

std::vector<double> Audio::channel(int ch) const {
    std::vector<double> out(static_cast<std::size_t>(frames()));
    for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = samples[i * static_cast<std::size_t>(nchnls) + static_cast<std::size_t>(ch)];
    return out;
}

struct SoundFileReader::Impl {
    SNDFILE* file = nullptr;
};

SoundFileReader::SoundFileReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
    SF_INFO info{};
    impl_->file = sf_open(path.c_str(), SFM_READ, &info);
    if (impl_->file == nullptr)
        throw SoundFileError(fmt::format("cannot read '{}': {}", path, sf_strerror(nullptr)));
    sr_ = info.samplerate;
    nchnls_ = info.channels;
    frames_ = info.frames;
    if (frames_ == std::numeric_limits<sf_count_t>::max() || frames_ < 0) {
        // "unknown length" (a FLAC streamed to a pipe): count the frames once
        std::vector<double> buf(static_cast<std::size_t>(4096 * nchnls_));
        frames_ = 0;
        for (sf_count_t n; (n = sf_readf_double(impl_->file, buf.data(), 4096)) > 0;)
            frames_ += n;
        if (sf_seek(impl_->file, 0, SEEK_SET) != 0) {
            sf_close(impl_->file);
            impl_->file = nullptr;
            throw SoundFileError(fmt::format("cannot read '{}': its length is unknown", path));
        }
    }
}

SoundFileReader::~SoundFileReader() {
    if (impl_->file != nullptr) sf_close(impl_->file);
}

std::int64_t SoundFileReader::read(double* interleaved, std::int64_t frames) {
    return sf_readf_double(impl_->file, interleaved, frames);
}

Audio readSoundFile(const std::string& path) {
    SoundFileReader r(path);
    Audio a;
    a.sr = r.sr();
    a.nchnls = r.nchnls();
    a.samples.resize(static_cast<std::size_t>(r.frames() * r.nchnls()));
    const auto got = r.read(a.samples.data(), r.frames());
    a.samples.resize(static_cast<std::size_t>(got * r.nchnls()));
    return a;
}

} // namespace spinout
