/* The venue page's week view: tap the first free slot, then the last one, and the booking
   form holds that time. A first tap picks a slot (the form then holds that one slot: booking
   it is one more tap); a second tap on a later slot of the same day extends the time to the
   end of that slot, if every slot in between can be booked and they follow each other
   without a gap (a closed hour); the next tap starts again. The
   selection is outlined and said in words above the week. Without this script each free
   slot is a link that pre-fills the form with that one slot. */
(function () {
  "use strict";
  var form = document.getElementById("book-form");
  var week = document.getElementById("week-view");
  var note = document.getElementById("slot-selection");
  if (!form || !week || !note) return;

  var anchor = null; // the first slot tapped, while the second is awaited

  function slotsOf(slot) {
    return Array.prototype.slice.call(slot.closest(".week-day").querySelectorAll(".slot"));
  }

  function dayLabel(slot) {
    var head = slot.closest(".week-day").querySelector(".fw-semibold");
    return head ? head.textContent.trim() : slot.closest(".week-day").getAttribute("data-date");
  }

  function fill(first, last) {
    form.elements.date.value = first.closest(".week-day").getAttribute("data-date");
    form.elements.start.value = first.getAttribute("data-start");
    form.elements.end.value = last.getAttribute("data-end");
  }

  function mark(first, last) {
    var all = week.querySelectorAll(".slot-selected");
    for (var i = 0; i < all.length; i++) {
      all[i].classList.remove("slot-selected");
      all[i].removeAttribute("aria-current");
    }
    var slots = slotsOf(first);
    var from = slots.indexOf(first), to = slots.indexOf(last);
    for (var j = from; j <= to; j++) {
      slots[j].classList.add("slot-selected");
      slots[j].setAttribute("aria-current", "true");
    }
  }

  function say(template, first, last, prefix) {
    var text = template
      .replace("{day}", dayLabel(first))
      .replace("{start}", first.getAttribute("data-start"))
      .replace("{end}", last.getAttribute("data-end-label") || last.getAttribute("data-end"));
    note.textContent = (prefix ? prefix + " " : "") + text + " ";
    var link = document.createElement("a");
    link.href = "#book-form";
    link.id = "slot-to-form";
    link.textContent = note.getAttribute("data-to-form");
    link.addEventListener("click", function (event) {
      event.preventDefault();
      form.scrollIntoView({ block: "start" });
      form.elements.start.focus({ preventScroll: true });
    });
    note.appendChild(link);
    note.hidden = false;
  }

  function start(slot, prefix) {
    anchor = slot;
    fill(slot, slot);
    mark(slot, slot);
    say(note.getAttribute("data-started"), slot, slot, prefix);
  }

  week.addEventListener("click", function (event) {
    var slot = event.target.closest("a.slot");
    if (!slot || !week.contains(slot)) return;
    event.preventDefault();
    if (!anchor || anchor.closest(".week-day") !== slot.closest(".week-day")) {
      start(slot);
      return;
    }
    var slots = slotsOf(slot);
    var from = slots.indexOf(anchor), to = slots.indexOf(slot);
    if (to < from) {
      start(slot);
      return;
    }
    for (var i = from; i <= to; i++) {
      var gap = i < to && slots[i].getAttribute("data-end") !== slots[i + 1].getAttribute("data-start");
      if (slots[i].tagName !== "A" || gap) {
        start(slot, note.getAttribute("data-not-free"));
        return;
      }
    }
    fill(anchor, slot);
    mark(anchor, slot);
    say(note.getAttribute("data-chosen"), anchor, slot);
    anchor = null;
  });
})();
