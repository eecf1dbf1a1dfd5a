#include "sendq/kafka/reader.hpp"

#include <algorithm>
#include <stdexcept>

#include "rdkafka_handles.hpp"
#include "sendq/log/logger.hpp"

namespace sendq::kafka {

struct reader::impl {
  log::logger& log;
  detail::kafka_handle rk;
  std::string topic;
  std::map<std::int32_t, std::int64_t> ends;  // bounded partitions still open: end offset
  bool follows = false;
  std::vector<std::string> gaps;  // see reader::gaps()
  std::map<std::int32_t, std::int64_t> begins;  // where assign() started each partition

  explicit impl(log::logger& l) : log(l) {}

  static void on_log(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
    auto* self = static_cast<impl*>(rd_kafka_opaque(rk));
    const auto l = level <= 3 ? log::level::error : level == 4 ? log::level::warn : log::level::debug;
    if (self && self->log.enabled(l)) self->log.write(l, "librdkafka", buf, {{"facility", fac}});
  }

  // librdkafka leaves a partition whose offset reset failed in a state that seek refuses
  // ("Erroneous state"): assign again, that partition from its oldest record left, the others
  // from where they stand (where they started when nothing was read from them yet).
  void restart_from_oldest(std::int32_t p) {
    rd_kafka_topic_partition_list_t* raw = nullptr;
    if (rd_kafka_assignment(rk.get(), &raw) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
    detail::partition_list l(raw);
    rd_kafka_position(rk.get(), l.get());
    for (int i = 0; i < l->cnt; ++i) {
      auto& e = l->elems[i];
      if (e.partition == p) {
        e.offset = RD_KAFKA_OFFSET_BEGINNING;
      } else if (e.offset < 0) {
        e.offset = begins[e.partition];
      }
    }
    if (const auto err = rd_kafka_assign(rk.get(), l.get())) {
      log.warn("kafka", "reading " + topic + " again from its oldest records failed", {{"error", rd_kafka_err2str(err)}});
    }
  }

  // A bounded partition is finished: stop fetching it (records past its end are dropped).
  void unassign_partition(std::int32_t p) {
    ends.erase(p);
    detail::partition_list l(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(l.get(), topic.c_str(), p);
    rd_kafka_pause_partitions(rk.get(), l.get());
  }
};

reader::reader(const reader_options& opts, log::logger& log) : impl_(std::make_unique<impl>(log)) {
  detail::conf_handle conf(rd_kafka_conf_new());
  detail::set(conf.get(), "bootstrap.servers", opts.brokers);
  // Assign-only: the group id is never joined nor committed to.
  detail::set(conf.get(), "group.id", "sendqctl-reader");
  detail::set(conf.get(), "log.connection.close", "false");
  detail::set_all(conf.get(), opts.librdkafka);
  // After the passthrough settings too: a bounded range is done at its partition's end, which
  // only enable.partition.eof reports (a worker's file may turn it off for its own consumer).
  detail::set(conf.get(), "enable.auto.commit", "false");
  detail::set(conf.get(), "enable.auto.offset.store", "false");
  detail::set(conf.get(), "enable.partition.eof", "true");
  // A range's next record deleted by retention while it is read: an error (read() notes the gap),
  // not a silent jump to the partition's end, librdkafka's default. Set after the passthrough
  // settings: a worker's file may set auto.offset.reset for its own consumer.
  detail::set(conf.get(), "auto.offset.reset", "error");
  rd_kafka_conf_set_opaque(conf.get(), impl_.get());
  rd_kafka_conf_set_log_cb(conf.get(), &impl::on_log);
  char err[512];
  impl_->rk.reset(rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), err, sizeof err));
  if (!impl_->rk) throw std::runtime_error(detail::creation_error("kafka reader", err, opts.librdkafka));
  conf.release();
  rd_kafka_poll_set_consumer(impl_->rk.get());
}

reader::~reader() {
  if (impl_->rk) rd_kafka_consumer_close(impl_->rk.get());
}

std::vector<std::int32_t> reader::partitions(const std::string& topic, std::chrono::milliseconds timeout) {
  std::unique_ptr<rd_kafka_topic_t, decltype(&rd_kafka_topic_destroy)> t(
      rd_kafka_topic_new(impl_->rk.get(), topic.c_str(), nullptr), &rd_kafka_topic_destroy);
  const rd_kafka_metadata_t* md = nullptr;
  const auto e = rd_kafka_metadata(impl_->rk.get(), 0, t.get(), &md, static_cast<int>(timeout.count()));
  if (e) throw std::runtime_error("kafka: metadata of topic " + topic + ": " + rd_kafka_err2str(e));
  std::unique_ptr<const rd_kafka_metadata_t, decltype(&rd_kafka_metadata_destroy)> guard(md, &rd_kafka_metadata_destroy);
  if (md->topic_cnt < 1 || md->topics[0].err) {
    throw std::runtime_error("kafka: topic " + topic + ": " +
                             (md->topic_cnt < 1 ? "unknown" : rd_kafka_err2str(md->topics[0].err)));
  }
  std::vector<std::int32_t> out;
  for (int i = 0; i < md->topics[0].partition_cnt; ++i) out.push_back(md->topics[0].partitions[i].id);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::pair<std::int64_t, std::int64_t>> reader::watermarks(const std::string& topic,
                                                                      const std::vector<std::int32_t>& partitions,
                                                                      std::chrono::milliseconds timeout) {
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  out.reserve(partitions.size());
  for (auto p : partitions) out.push_back(watermarks(topic, p, timeout));
  return out;
}

std::pair<std::int64_t, std::int64_t> reader::watermarks(const std::string& topic, std::int32_t partition,
                                                         std::chrono::milliseconds timeout) {
  std::int64_t low = 0, high = 0;
  const auto e = rd_kafka_query_watermark_offsets(impl_->rk.get(), topic.c_str(), partition, &low, &high,
                                                  static_cast<int>(timeout.count()));
  if (e) {
    throw std::runtime_error("kafka: watermarks of " + topic + "/" + std::to_string(partition) + ": " + rd_kafka_err2str(e));
  }
  return {low, high};
}

std::vector<std::int64_t> reader::offsets_for_time(const std::string& topic, const std::vector<std::int32_t>& partitions,
                                                   std::int64_t epoch_ms, std::chrono::milliseconds timeout,
                                                   const std::vector<std::pair<std::int64_t, std::int64_t>>* known) {
  if (known != nullptr && known->size() != partitions.size()) {
    throw std::invalid_argument("kafka: offsets_for_time: " + std::to_string(known->size()) + " watermarks for " +
                                std::to_string(partitions.size()) + " partitions");
  }
  detail::partition_list l(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (auto p : partitions) rd_kafka_topic_partition_list_add(l.get(), topic.c_str(), p)->offset = epoch_ms;
  const auto e = rd_kafka_offsets_for_times(impl_->rk.get(), l.get(), static_cast<int>(timeout.count()));
  if (e) throw std::runtime_error("kafka: offsets for time in " + topic + ": " + rd_kafka_err2str(e));
  std::vector<std::int64_t> out;
  for (std::size_t i = 0; i < partitions.size(); ++i) {
    const auto& el = l->elems[i];
    out.push_back(el.err || el.offset < 0 ? -1 : el.offset);
  }
  // -1 is a real broker's answer when no record is that recent, and the mock cluster's always: a
  // caller would then scan the whole partition (all its retention, on a quiet partition of a real
  // cluster). The partition's last record tells them apart: older than the time, none is newer.
  for (std::size_t i = 0; i < partitions.size(); ++i) {
    if (out[i] >= 0) continue;
    const auto [low, high] = known != nullptr ? (*known)[i] : watermarks(topic, partitions[i], timeout);
    if (high <= low) {
      out[i] = high;
      continue;
    }
    assign(topic, {{partitions[i], high - 1, high}});
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::vector<message> last;
    while (last.empty() && !done() && std::chrono::steady_clock::now() < deadline) last = read(1, std::chrono::milliseconds(100));
    if (!last.empty() && last.front().timestamp_ms() >= 0 && last.front().timestamp_ms() < epoch_ms) out[i] = high;
    // The end reached with no record (the last offset a transaction marker): none is newer.
    if (last.empty() && done()) out[i] = high;
  }
  assign(topic, {});
  return out;
}

void reader::assign(const std::string& topic, const std::vector<partition_range>& ranges) {
  impl_->topic = topic;
  impl_->ends.clear();
  impl_->begins.clear();
  impl_->follows = false;
  detail::partition_list l(rd_kafka_topic_partition_list_new(static_cast<int>(ranges.size())));
  for (const auto& r : ranges) {
    if (r.end >= 0 && r.begin >= r.end) continue;
    rd_kafka_topic_partition_list_add(l.get(), topic.c_str(), r.partition)->offset = r.begin;
    impl_->begins[r.partition] = r.begin;
    if (r.end >= 0) {
      impl_->ends[r.partition] = r.end;
    } else {
      impl_->follows = true;
    }
  }
  const auto e = rd_kafka_assign(impl_->rk.get(), l.get());
  if (e) throw std::runtime_error("kafka: assign " + topic + ": " + rd_kafka_err2str(e));
  // A partition finished in an earlier assignment was paused (unassign_partition), and librdkafka
  // keeps an application's pause across assignments.
  if (l->cnt > 0) rd_kafka_resume_partitions(impl_->rk.get(), l.get());
}

std::vector<message> reader::read(std::size_t max, std::chrono::milliseconds timeout) {
  std::vector<message> out;
  auto wait = timeout;
  while (out.size() < max && !done()) {
    rd_kafka_message_t* raw = rd_kafka_consumer_poll(impl_->rk.get(), static_cast<int>(wait.count()));
    if (!raw) break;
    wait = std::chrono::milliseconds(0);  // take what is ready, without waiting again
    message m(raw);
    if (raw->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      // At the log end: finished when the range ends there (or before); else keep waiting.
      auto it = impl_->ends.find(raw->partition);
      if (it != impl_->ends.end() && raw->offset >= it->second) impl_->unassign_partition(raw->partition);
      continue;
    }
    if (raw->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET || raw->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
      // The records from here on are gone (retention). A bounded range cannot be read to its end;
      // a followed partition goes on from its oldest record left.
      const bool bounded = impl_->ends.count(raw->partition) != 0;
      impl_->gaps.push_back("partition " + std::to_string(raw->partition) + ": the record at offset " +
                            std::to_string(raw->offset) + " is no longer on the broker (" + rd_kafka_message_errstr(raw) +
                            (bounded ? "); the rest of its range was not read" : "); going on from the oldest record left"));
      if (bounded) {
        impl_->unassign_partition(raw->partition);
      } else {
        impl_->restart_from_oldest(raw->partition);
      }
      continue;
    }
    if (raw->err) {
      impl_->log.warn("kafka", "read error", {{"error", rd_kafka_message_errstr(raw)}});
      continue;
    }
    auto it = impl_->ends.find(m.partition());
    const bool bounded = it != impl_->ends.end();
    if (bounded && m.offset() >= it->second) {
      impl_->unassign_partition(m.partition());
      continue;
    }
    if (!bounded && !impl_->follows) continue;  // a partition already finished
    const bool last = bounded && m.offset() + 1 >= it->second;
    out.push_back(std::move(m));
    if (last) impl_->unassign_partition(out.back().partition());
  }
  return out;
}

bool reader::done() const { return impl_->ends.empty() && !impl_->follows; }

bool reader::reading(std::int32_t partition) const { return impl_->ends.count(partition) > 0; }

const std::vector<std::string>& reader::gaps() const { return impl_->gaps; }

std::optional<std::string_view> reader::header(const message& m, std::string_view name) {
  return m.header(name);
}

}  // namespace sendq::kafka
