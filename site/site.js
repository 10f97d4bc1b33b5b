// The one script of the site: the switch above a stage's main.go between
// the whole file and only the sections that changed since the stage before.
// Without it the page shows the whole file, which is what the switch starts at.
"use strict";
document.querySelectorAll("form.switch").forEach(function (form) {
	var target = document.getElementById(form.dataset.switch);
	if (!target) {
		return;
	}
	form.hidden = false;
	form.addEventListener("change", function (e) {
		target.classList.toggle("only-changed", e.target.value === "changed");
	});
});
