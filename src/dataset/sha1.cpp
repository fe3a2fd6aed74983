// SHA-1 ids of Kaggle patches and the --format parser (small helpers of the dataset stage).
#include <openssl/evp.h>

#include <fstream>
#include <vector>

#include "wsi/dataset.hpp"
#include "wsi/error.hpp"

namespace wsi {

DatasetFormat parse_dataset_format(const std::string& s) {
  if (s == "pcam") return DatasetFormat::pcam;
  if (s == "kaggle") return DatasetFormat::kaggle;
  throw UsageError("unknown dataset format '" + s +
                   "': use 'pcam' (HDF5 x/y files + meta CSV) or 'kaggle' (one TIFF per patch + labels CSV)");
}

namespace {

constexpr const char* kNoSha1 = "SHA-1 is not available from OpenSSL (is it restricted by a FIPS configuration?)";

std::string to_hex(const unsigned char* md, unsigned int len) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(2 * len, '0');
  for (unsigned int i = 0; i < len; ++i) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 0x0f];
  }
  return out;
}

}  // namespace

std::string sha1_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open the file to hash it");
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha1(), nullptr) != 1) {
    EVP_MD_CTX_free(ctx);
    throw Error(kNoSha1);
  }
  std::vector<char> buf(1 << 20);
  bool ok = true;
  while (ok && in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto got = static_cast<size_t>(in.gcount());
    if (got > 0) ok = EVP_DigestUpdate(ctx, buf.data(), got) == 1;
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  ok = ok && !in.bad() && EVP_DigestFinal_ex(ctx, md, &len) == 1 && len == 20;
  EVP_MD_CTX_free(ctx);
  if (in.bad()) throw Error(path.string() + ": read error while hashing the file");
  if (!ok) throw Error(kNoSha1);
  return to_hex(md, len);
}

std::string sha1_hex(const uint8_t* data, size_t size) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // EVP_Digest accepts a null pointer only for zero bytes; keep that case well defined.
  static const uint8_t empty = 0;
  if (EVP_Digest(size ? data : &empty, size, md, &len, EVP_sha1(), nullptr) != 1 || len != 20)
    throw Error(kNoSha1);
  return to_hex(md, len);
}

}  // namespace wsi
