/* Forms that change something for good ask first: <form data-confirm="question">. On OK the
   form is sent with confirmed=1, so the server does not ask again; on Cancel nothing is sent.
   A form with a "which dates" choice (scope) adds the chosen option to the question. Without
   this script the server answers the unconfirmed request with a confirmation page. */
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-confirm")) return;
    var question = form.getAttribute("data-confirm");
    var scope = form.querySelector("select[name=scope]");
    if (scope && scope.selectedIndex >= 0) {
      question += "\n" + scope.options[scope.selectedIndex].text;
    }
    if (!window.confirm(question)) {
      event.preventDefault();
      return;
    }
    var flag = form.querySelector("input[name=confirmed]");
    if (!flag) {
      flag = document.createElement("input");
      flag.type = "hidden";
      flag.name = "confirmed";
      form.appendChild(flag);
    }
    flag.value = "1";
  });
})();
