// Read an .ics from standard input with ical.js and print each item's UTC instants as JSON
// (tests/readers.py compares them with the other readers).
import ICAL from "ical.js";

const LIMIT = 400;

function stamp(time) {
  if (time.isDate) return time.toString().slice(0, 10);
  if (time.zone === ICAL.Timezone.localTimezone) return time.toString().slice(0, 19);
  return time.convertToZone(ICAL.Timezone.utcTimezone).toString().slice(0, 19) + "Z";
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const root = new ICAL.Component(ICAL.parse(Buffer.concat(chunks).toString("utf8")));
ICAL.TimezoneService.reset();
for (const vtz of root.getAllSubcomponents("vtimezone")) ICAL.TimezoneService.register(vtz);
if (process.argv[2] === "texts") {
  // TEXT values as ical.js gives them (properties it does not know come back still escaped).
  const texts = { calendar: {}, events: {} };
  for (const name of ["name", "x-wr-calname", "description", "x-wr-caldesc"]) {
    texts.calendar[name.toUpperCase()] = root.getFirstPropertyValue(name);
  }
  for (const vevent of root.getAllSubcomponents("vevent")) {
    const one = {};
    for (const name of ["summary", "location", "description"]) one[name.toUpperCase()] = vevent.getFirstPropertyValue(name);
    one.CATEGORIES = vevent.getAllProperties("categories").flatMap((p) => p.getValues());
    texts.events[vevent.getFirstPropertyValue("uid")] = one;
  }
  process.stdout.write(JSON.stringify(texts));
  process.exit(0);
}
const rows = [];
for (const vevent of root.getAllSubcomponents("vevent")) {
  const event = new ICAL.Event(vevent);
  const rid = event.recurrenceId ? stamp(event.recurrenceId) : null;
  rows.push([event.uid, rid, stamp(event.startDate), stamp(event.endDate)]);
  if (event.isRecurring() && !event.isRecurrenceException()) {
    const it = event.iterator();
    for (let n = 0, next; n < LIMIT && (next = it.next()); n++) {
      const details = event.getOccurrenceDetails(next);
      rows.push([event.uid, stamp(details.recurrenceId), stamp(details.startDate), stamp(details.endDate)]);
    }
  }
}
process.stdout.write(JSON.stringify(rows));
